"""CORS (``FRONTLINE_CORS_ORIGINS``): none by default; an allowed origin's preflight is
answered before the key check, and every answer to it (refusals included) carries the headers
a browser needs to let the page read it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import assert_problem
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]
ALLOWED: Final = "https://analyst.example.org"
OTHER: Final = "https://evil.example.net"


def _preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": method,
        "access-control-request-headers": "authorization, content-type, idempotency-key",
    }


@pytest.fixture
async def browser(settings: Settings, admin_key: str) -> AsyncIterator[tuple[Client, str]]:
    """The app allowing one origin (and a local one), no anonymous reads; and an admin key."""
    configured = settings.with_(
        cors_origins=f"{ALLOWED}, http://localhost:5173", anonymous_reads="false"
    )
    async with AsyncTestClient(app=create_app(configured)) as client:
        yield client, admin_key


async def test_no_cors_by_default(client: Client) -> None:
    """Without the setting, no answer carries a CORS header, and a preflight meets the key
    check like any request without a key (here the client sends one: the OPTIONS route
    answers with its Allow list and nothing for CORS)."""
    answer = await client.get("/v1/state", headers={"origin": ALLOWED})
    assert answer.status_code == 200
    assert not any(k.startswith("access-control-") for k in answer.headers)
    preflight = await client.options("/v1/events", headers=_preflight(ALLOWED))
    assert not any(k.startswith("access-control-") for k in preflight.headers)


async def test_a_preflight_from_an_allowed_origin_is_answered_before_the_key_check(
    browser: tuple[Client, str],
) -> None:
    """Issue 15's finding: a browser's preflight got 401 (it never carries a key). From an
    allowed origin it is now 204 with the origin, the methods, the request headers the API
    reads (the key, Idempotency-Key, If-None-Match, Last-Event-ID, Frontline-Min-Position:
    a page reading its own writes from a replica), a max age and
    ``Vary: Origin``; from another origin it gets no CORS header."""
    client, _ = browser
    answer = await client.options("/v1/events", headers=_preflight(ALLOWED))
    assert answer.status_code == 204, answer.text
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    methods = {m.strip() for m in answer.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST", "HEAD", "OPTIONS"} <= methods
    allowed = {h.strip() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "if-none-match"} <= allowed
    assert {"last-event-id", "frontline-min-position"} <= allowed
    assert int(answer.headers["access-control-max-age"]) > 0
    assert "Origin" in answer.headers["vary"]
    local = await client.options("/v1/state", headers=_preflight("http://localhost:5173", "GET"))
    assert local.headers["access-control-allow-origin"] == "http://localhost:5173"
    refused = await client.options("/v1/events", headers=_preflight(OTHER))
    assert "access-control-allow-origin" not in refused.headers


async def test_answers_to_an_allowed_origin_carry_the_headers_a_client_reads(
    browser: tuple[Client, str],
) -> None:
    """A request from an allowed origin: its answer names the origin and exposes ETag, Link,
    Location, Retry-After, X-Request-ID...; a 401 without a key and a 404 too (the page
    must read the problem); ``Vary: Origin`` on every answer, even to no origin."""
    client, key = browser
    auth = {"authorization": f"Bearer {key}", "origin": ALLOWED}
    created = await client.post("/v1/events", json=event_json(), headers=auth)
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == ALLOWED
    exposed = {h.strip() for h in created.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "link", "location", "retry-after", "x-request-id"} <= exposed
    assert "Origin" in created.headers["vary"]
    refused = await client.get("/v1/state", headers={"origin": ALLOWED})
    assert_problem(refused, 401)
    assert refused.headers["access-control-allow-origin"] == ALLOWED
    missing = await client.get("/v1/nope", headers={"origin": ALLOWED})
    assert_problem(missing, 404)
    assert missing.headers["access-control-allow-origin"] == ALLOWED
    other = await client.get("/v1/state", headers={**auth, "origin": OTHER})
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers
    assert "Origin" in other.headers["vary"]
    plain = await client.get("/health")
    assert "Origin" in plain.headers["vary"]


async def test_any_origin(settings: Settings) -> None:
    """``*`` allows any origin, answered as ``*`` (no credentials: the key is a header)."""
    async with AsyncTestClient(app=create_app(settings.with_(cors_origins="*"))) as client:
        answer = await client.options("/v1/state", headers=_preflight(OTHER, "GET"))
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == "*"
        got = await client.get("/health", headers={"origin": OTHER})
        assert got.headers["access-control-allow-origin"] == "*"
