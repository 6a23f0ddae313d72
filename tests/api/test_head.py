"""HEAD on every GET route (service/api/head.py): the GET's status and headers, no body;
streams end at their headers; refusals as the GET's, without a body."""

from __future__ import annotations

import asyncio

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import assert_problem
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]
IDENTITY = {"accept-encoding": "identity"}


@pytest.fixture
async def seeded(client: Client) -> Client:
    """The admin client with one control event stored."""
    response = await client.post("/v1/events", json=event_json())
    assert response.status_code == 201, response.text
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/v1/state?valid_at=2017-06-05",
        "/v1/state?valid_at=2017-06-05&format=csv",
        "/v1/events",
        "/v1/sides",
        "/health",
        "/schema/openapi.json",
    ],
)
async def test_head_answers_the_gets_status_and_headers_without_a_body(
    seeded: Client, path: str
) -> None:
    """A HEAD has the GET's status, type, length and ETag, and an empty body."""
    got = await seeded.get(path, headers=IDENTITY)
    head = await seeded.head(path, headers=IDENTITY)
    assert got.status_code == 200, got.text
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers.get("content-length") == got.headers.get("content-length")
    assert head.headers.get("etag") == got.headers.get("etag")


async def test_head_with_the_etag_is_a_304(seeded: Client) -> None:
    """A conditional HEAD meets the ETag check as its GET would: 304, no body."""
    path = "/v1/state?valid_at=2017-06-05"
    tag = (await seeded.get(path)).headers["etag"]
    head = await seeded.head(path, headers={"if-none-match": tag})
    assert head.status_code == 304
    assert head.content == b""


async def test_head_on_the_live_stream_ends_at_its_headers(seeded: Client) -> None:
    """The live stream never ends on its own; its HEAD answers the headers and ends."""
    head = await asyncio.wait_for(seeded.head("/v1/events/stream?after=0"), timeout=10)
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.content == b""


async def test_head_is_refused_as_its_get_would_be(seeded: Client) -> None:
    """No route: 404; a path without GET: 405 naming its methods; no body in either."""
    missing = await seeded.head("/v1/nowhere")
    assert missing.status_code == 404
    assert missing.content == b""
    assert missing.headers["content-type"] == "application/problem+json"
    post_only = await seeded.head("/v1/admin/rebuild")
    assert post_only.status_code == 405
    assert "POST" in post_only.headers["allow"]
    assert post_only.content == b""
    # The GET says the same with a body, naming the field.
    assert_problem(await seeded.get("/v1/nowhere"), 404)


async def test_head_without_a_key_is_a_401(settings: Settings) -> None:
    """Reads need a key unless anonymous reads are on: HEAD too."""
    async with AsyncTestClient(app=create_app(settings.with_(anonymous_reads="false"))) as bare:
        head = await bare.head("/v1/state?valid_at=2017-06-05")
    assert head.status_code == 401
    assert head.content == b""


async def test_post_and_get_are_untouched(seeded: Client) -> None:
    """Only HEAD is rewritten: a GET keeps its body, a POST its 201."""
    got = await seeded.get("/v1/state?valid_at=2017-06-05")
    assert got.status_code == 200
    assert "sy-maskanah" in got.text
    posted = await seeded.post("/v1/events", json=event_json(place={"id": "sy-other"}))
    assert posted.status_code == 201


async def test_head_of_a_gzipped_answer_names_the_gzip_body(seeded: Client) -> None:
    """With ``Accept-Encoding: gzip``, a HEAD has the gzipped GET's coding, length and tag
    (the tag naming gzip), and no body."""
    for n in range(30):  # enough places that the answer passes FRONTLINE_GZIP_MIN_BYTES
        place = {"id": f"sy-place-{n}", "name": f"Place {n}"}
        assert (await seeded.post("/v1/events", json=event_json(place=place))).is_success
    path = "/v1/state?valid_at=2017-06-05"
    gzipped = {"accept-encoding": "gzip"}
    async with seeded.stream("GET", path, headers=gzipped) as got:
        raw = b"".join([chunk async for chunk in got.aiter_raw()])
        got_headers = got.headers
    head = await seeded.head(path, headers=gzipped)
    assert got_headers["content-encoding"] == "gzip"
    assert head.headers["content-encoding"] == "gzip"
    assert head.headers["content-length"] == got_headers["content-length"] == str(len(raw))
    assert head.headers["etag"] == got_headers["etag"]
    assert "-gzip-" in head.headers["etag"]
    assert head.content == b""


async def test_head_with_a_bad_parameter_is_the_gets_422_without_a_body(seeded: Client) -> None:
    """A HEAD is checked as its GET: a bad ``valid_at`` or an unknown parameter is a 422
    problem (its type says so), with no body."""
    for query in ("valid_at=not-a-date", "valid_at=2017-06-05&colour=red"):
        got = await seeded.get(f"/v1/state?{query}")
        head = await seeded.head(f"/v1/state?{query}")
        assert_problem(got, 422)
        assert head.status_code == 422
        assert head.headers["content-type"] == "application/problem+json"
        assert head.content == b""
