"""Who may do what: every route of the OpenAPI schema, walked with every role and with no
key; anonymous reads; unknown and revoked keys; the submitter; no key in any log line."""

from __future__ import annotations

import gc
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from typing import Final

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from service.app import create_app
from service.roles import ROLES
from service.settings import Settings
from service.store.keys import UNKNOWN_ENTRIES, KeyStore
from tests.api.conftest import assert_problem
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]

#: The README's route-to-role table, written out again here on purpose: a route added
#: without a line here fails the walk.
TABLE: Final[dict[tuple[str, str], str]] = {
    ("GET", "/health"): "open",
    ("GET", "/ready"): "open",
    ("GET", "/metrics"): "open",
    ("POST", "/v1/events"): "ingest",
    ("POST", "/v1/imports"): "ingest",
    ("GET", "/v1/events"): "read",
    ("GET", "/v1/events/stream"): "read",
    ("GET", "/v1/events/{event_id}"): "read",
    ("GET", "/v1/state"): "read",
    ("GET", "/v1/state/areas"): "read",
    ("GET", "/v1/state/changes"): "read",
    ("GET", "/v1/state/extent"): "read",
    ("GET", "/v1/disputes"): "read",
    ("GET", "/v1/places/{place_id}"): "read",
    ("GET", "/v1/places/{place_id}/timeline"): "read",
    ("GET", "/v1/places/{place_id}/events"): "read",
    ("GET", "/v1/places/{place_id}/history"): "read",
    ("GET", "/v1/places/{place_id}/casualties"): "read",
    ("GET", "/v1/casualties"): "read",
    ("GET", "/v1/audit/head"): "audit",
    ("GET", "/v1/audit/key"): "audit",
    ("GET", "/v1/audit/verify"): "audit",
    ("GET", "/v1/export"): "audit",
    ("POST", "/v1/admin/rebuild"): "admin",
    ("GET", "/v1/sides"): "read",
    ("GET", "/v1/sides/{side}"): "read",
    ("GET", "/v1/sides/unmapped"): "read",
    ("POST", "/v1/sides"): "edit",
    ("GET", "/v1/sources"): "read",
    ("GET", "/v1/sources/{source}"): "read",
    ("POST", "/v1/sources"): "edit",
    ("GET", "/v1/places/merges"): "read",
    ("POST", "/v1/places/{place_id}/merges"): "edit",
    ("POST", "/v1/places/{place_id}/unmerges"): "edit",
}
GRANTED: Final = {
    "ingest": {"ingest"},
    "read": {"read"},
    "audit": {"read", "audit"},
    "editor": {"read", "edit"},
    "admin": {"ingest", "read", "audit", "edit", "admin"},
}


@pytest.fixture
async def keys(owner_pool: asyncpg.Pool) -> dict[str, str]:
    """One key per role."""
    store = KeyStore(owner_pool)
    return {role: (await store.create(f"{role}-key", role))[1] for role in ROLES}


@pytest.fixture
async def bare(settings: Settings) -> AsyncIterator[Client]:
    """The app with no key sent and no anonymous reads (as with DATABASE_URL)."""
    async with AsyncTestClient(app=create_app(settings.with_(key_cache=0.0))) as client:
        yield client


async def test_every_route_with_every_role_and_no_key(bare: Client, keys: dict[str, str]) -> None:
    """Every route of the OpenAPI document is in the role table, and each answers 401 with a
    Bearer challenge without a key, 403 to a role lacking its grant, and neither to one holding
    it."""
    schema = (await bare.get("/schema/openapi.json")).json()
    routes = {(m.upper(), path) for path, ops in schema["paths"].items() for m in ops}
    assert routes == set(TABLE), "every route needs a line in TABLE (and the README's table)"
    place = "sy-maskanah"
    assert (
        await bare.post("/v1/events", json=event_json(), headers=auth(keys["admin"]))
    ).status_code == 201
    for (method, path), need in sorted(TABLE.items()):
        url = path.replace("{place_id}", place).replace("{event_id}", str(uuid.uuid4()))
        for role in (None, *ROLES):
            allowed = need == "open" or (role is not None and need in GRANTED[role])
            if path == "/v1/events/stream" and allowed:
                continue  # it would stay open; its refusals are what matters here
            headers = auth(keys[role]) if role is not None else {}
            body = event_json() if method == "POST" and path == "/v1/events" else None
            response = await bare.request(method, url, json=body, headers=headers)
            where = f"{method} {path} as {role or 'no key'}"
            if allowed:
                assert response.status_code not in (401, 403), where
            elif role is None:
                assert_problem(response, 401)
                assert response.headers["www-authenticate"].startswith("Bearer"), where
            else:
                assert_problem(response, 403)


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_unknown_malformed_and_revoked_keys_are_401(
    bare: Client, owner_pool: asyncpg.Pool, keys: dict[str, str]
) -> None:
    """An unknown key, a non-Bearer scheme, a bare scheme and a key without one are 401; a key
    that worked is 401 once revoked, and a second revoke finds nothing."""
    for header in ("Bearer flk_nothing", "Basic abc", "Bearer", "flk_no_scheme"):
        response = await bare.get("/v1/events", headers={"authorization": header})
        assert_problem(response, 401)
    assert (await bare.get("/v1/events", headers=auth(keys["read"]))).status_code == 200
    assert await KeyStore(owner_pool).revoke("read-key")
    assert_problem(await bare.get("/v1/events", headers=auth(keys["read"])), 401)
    assert not await KeyStore(owner_pool).revoke("read-key")  # already revoked


async def test_anonymous_reads_open_reads_only(settings: Settings) -> None:
    """With anonymous reads on, state and events answer without a key, while appends, the audit
    head and a rebuild stay 401."""
    app = create_app(settings.with_(anonymous_reads="true"))
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/v1/state")).status_code == 200
        assert (await client.get("/v1/events")).status_code == 200
        assert_problem(await client.post("/v1/events", json=event_json()), 401)
        assert_problem(await client.get("/v1/audit/head"), 401)
        assert_problem(await client.post("/v1/admin/rebuild"), 401)


async def test_the_submitter_is_the_key_that_appended(
    bare: Client, keys: dict[str, str], owner: asyncpg.Connection
) -> None:
    """The stored submitter is the appending key's name; audit keys see it on the event, read
    keys do not, and the audit chain still verifies."""
    response = await bare.post("/v1/events", json=event_json(), headers=auth(keys["ingest"]))
    assert response.status_code == 201
    submitter = await owner.fetchval("SELECT submitter FROM events WHERE position = 1")
    assert submitter == "ingest-key"
    event_id = response.json()["receipts"][0]["id"]
    audited = await bare.get(f"/v1/events/{event_id}", headers=auth(keys["audit"]))
    assert audited.json()["submitter"] == "ingest-key"
    read = await bare.get(f"/v1/events/{event_id}", headers=auth(keys["read"]))
    assert read.status_code == 200
    assert "submitter" not in read.json()  # only audit and admin see who submitted
    assert (await bare.get("/v1/audit/verify", headers=auth(keys["audit"]))).json()["ok"]


async def test_no_key_in_any_log_line_and_owasp_names(bare: Client, keys: dict[str, str]) -> None:
    """Refused requests log the OWASP events authz_fail and authn_login_fail, and no log line
    holds any key, valid or not."""
    with capture_logs() as logs:
        await bare.get("/v1/events", headers=auth(keys["read"]))
        await bare.post("/v1/events", json=event_json(), headers=auth(keys["read"]))
        await bare.get("/v1/events", headers=auth("flk_" + "x" * 40))
        await bare.get("/v1/events")
    events = {line["event"] for line in logs}
    assert {"authz_fail", "authn_login_fail"} <= events
    text = repr(logs)
    for key in (*keys.values(), "flk_" + "x" * 40):
        assert key not in text


async def test_a_key_over_its_rate_is_429_with_retry_after(
    settings: Settings, keys: dict[str, str]
) -> None:
    """Requests per key per minute, counted per process: the one over gets 429 with a
    Retry-After; another key is not affected."""
    app = create_app(settings.with_(rate_limit=3, key_cache=0.0))
    async with AsyncTestClient(app=app) as client:
        with capture_logs() as logs:
            for _ in range(3):
                assert (
                    await client.get("/v1/events", headers=auth(keys["read"]))
                ).status_code == 200
            over = await client.get("/v1/events", headers=auth(keys["read"]))
        body = assert_problem(over, 429)
        assert "3 requests" in body["detail"]
        assert 1 <= int(over.headers["retry-after"]) <= 60
        assert "excess_rate_limit_exceeded" in {line["event"] for line in logs}
        assert (await client.get("/v1/events", headers=auth(keys["audit"]))).status_code == 200


async def test_a_burst_across_a_minute_boundary_passes_the_limit_once(
    settings: Settings, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of twice the limit within one second passes the limit once, wherever the
    wall clock's minute falls (the clock is moved over a minute boundary mid-burst).

    Regression (issue 13): the limit counted fixed one-minute windows of the wall clock, so
    the end of one and the start of the next let 69 requests through in 1 s against 50."""
    boundary = (time.time() // 60 + 1) * 60
    clock = {"now": boundary - 0.5}
    monkeypatch.setattr(time, "time", lambda: clock["now"])
    app = create_app(settings.with_(rate_limit=50, key_cache=0.0))
    passed = 0
    async with AsyncTestClient(app=app) as client:
        started = time.monotonic()
        for n in range(100):
            clock["now"] = boundary - 0.5 + n / 100  # the wall clock crosses the minute
            response = await client.get("/v1/state/extent", headers=auth(keys["read"]))
            passed += response.status_code == 200
        elapsed = time.monotonic() - started
    # A bucket of 50 refills 50 a minute: at most 50 plus what the elapsed time refills.
    assert passed <= 50 + int(elapsed * 50 / 60) + 1, (passed, elapsed)
    assert passed >= 50


async def test_anonymous_reads_and_bad_keys_count_against_the_address(
    settings: Settings, keys: dict[str, str]
) -> None:
    """Requests without a valid key (anonymous reads, a missing, unknown or over-long key)
    are counted per client address against FRONTLINE_ANONYMOUS_RATE_LIMIT: past it, 429 with
    Retry-After, and an unknown key is not even looked up; a key seen live before is counted
    apart and still passes (it is looked up again: the cache holds it for no time here).

    Regression (issue 13): neither anonymous reads nor unknown keys were limited at all."""
    app = create_app(settings.with_(anonymous_reads="true", anonymous_rate_limit=6, key_cache=0.0))
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/v1/state", headers=auth(keys["read"]))).status_code == 200
        for _ in range(3):
            assert (await client.get("/v1/state")).status_code == 200
        assert_problem(await client.get("/v1/state", headers=auth("flk_" + "u" * 43)), 401)
        assert_problem(await client.get("/v1/state", headers=auth("flk_" + "u" * 400)), 401)
        assert_problem(await client.post("/v1/events", json=event_json()), 401)
        with capture_logs() as logs:
            for headers in ({}, auth("flk_" + "v" * 43), auth("flk_" + "v" * 400)):
                over = await client.get("/v1/state", headers=headers)
                assert_problem(over, 429)
                assert int(over.headers["retry-after"]) >= 1
        assert "address" in over.json()["detail"]
        assert {line["event"] for line in logs} - {"request"} == {"excess_rate_limit_exceeded"}
        assert len(app.state.services.keys) == 2  # the read key and the first unknown one
        assert (await client.get("/v1/state", headers=auth(keys["read"]))).status_code == 200


async def test_an_over_long_key_is_refused_before_it_is_hashed_or_remembered(
    settings: Settings, keys: dict[str, str]
) -> None:
    """A key longer than any key Frontline mints answers 401 without being hashed, looked
    up or remembered: 30 distinct 1 MiB keys leave the process's memory where it was.

    Regression (issue 13): every bogus key stayed in the key cache (cleared only past
    10,000 entries): 100 requests with a 10 MB key grew the process by 973 MiB."""
    app = create_app(settings.with_(anonymous_rate_limit=0))
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/v1/events", headers=auth(keys["read"]))).status_code == 200
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for n in range(30):
                key = f"flk_{n:04d}" + "k" * 2**20
                assert_problem(await client.get("/v1/events", headers=auth(key)), 401)
                del key
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert grown < 8 * 2**20, f"{grown / 2**20:.1f} MiB kept after 30 MiB of bogus keys"


async def test_unknown_keys_are_remembered_in_a_bounded_cache(
    pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    """Unknown keys are remembered (so a repeated one costs no look-up) in a least recently
    used cache of UNKNOWN_ENTRIES: ever new unknown keys never grow it past that, and the
    recent ones are the ones kept."""
    store = KeyStore(pool, ttl=60.0)
    bogus = [f"flk_{n:043d}" for n in range(UNKNOWN_ENTRIES + 500)]
    for key in bogus:
        assert await store.find(key) is None
    assert len(store) == UNKNOWN_ENTRIES
    assert store.cached(bogus[-1]) == (True, None)
    assert store.cached(bogus[0]) == (False, None)
    _, live = await KeyStore(owner_pool).create("cache-test", "read")
    found = await store.find(live)
    assert found is not None
    assert store.cached(live) == (True, found)


async def test_no_spelling_of_a_path_escapes_its_rule(bare: Client, keys: dict[str, str]) -> None:
    """A router reads `//v1/audit/head` or `/v1/./audit/head` as the audit route: so does
    the key check (it once read the first as outside /v1/ and let it through)."""
    for path in ("//v1/audit/head", "/v1//audit/head", "/v1/./audit/head", "/v1/audit/head/"):
        url = "http://testserver" + path
        assert_problem(await bare.get(url), 401)
        assert_problem(await bare.get(url, headers=auth(keys["read"])), 403)
        allowed = await bare.get(url, headers=auth(keys["audit"]))
        assert allowed.status_code not in (401, 403), path
