"""Conditional GET, the cache policy and gzip of every read answer (service/api/caching.py):
an ETag and 304 everywhere, immutable only when pinned at or below the projections'
position, a tag of its own per content coding, streams never buffered."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.api import caching
from service.app import create_app
from service.settings import Settings
from tests.api.conftest import HOST, served
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]
SEED: Final = Path(__file__).resolve().parents[2] / "demo" / "seed.ndjson"
IMMUTABLE: Final = "max-age=31536000, immutable"
IDENTITY: Final = {"accept-encoding": "identity"}
GZIP: Final = {"accept-encoding": "gzip"}
DAY: Final = "2017-06-05"


async def post_seed(client: Client) -> int:
    """The seed, one commit per event; the number of events (the log's head)."""
    events = [json.loads(line) for line in SEED.read_text().splitlines() if line.strip()]
    for event in events:
        response = await client.post("/v1/events", json=event)
        assert response.status_code == 201, response.text
    return len(events)


@pytest.fixture
async def anonymous(settings: Settings) -> AsyncIterator[Client]:
    """A client without a key on an app that serves reads to anyone."""
    async with AsyncTestClient(app=create_app(settings.with_(anonymous_reads="true"))) as c:
        yield c


def read_urls(head: int) -> list[str]:
    """A read of every kind, unpinned (the latest known position)."""
    return [
        f"/v1/state?valid_at={DAY}",
        f"/v1/state?valid_at={DAY}&format=geojson",
        f"/v1/state?valid_at={DAY}&format=csv",
        f"/v1/state/changes?from=2017-01-01&to={DAY}",
        f"/v1/state/changes?from=2017-01-01&to={DAY}&net=true",
        "/v1/state/extent",
        f"/v1/state/areas?valid_at={DAY}",
        f"/v1/disputes?valid_at={DAY}",
        f"/v1/places/sy-maskanah?valid_at={DAY}",
        "/v1/places/sy-maskanah/timeline",
        "/v1/places/sy-maskanah/events",
        "/v1/places/sy-maskanah/history",
        "/v1/events?limit=5",
        "/v1/events/" + json.loads(SEED.read_text().splitlines()[0])["id"],
        "/v1/audit/head",
        f"/v1/audit/verify?to={head}&projections=off",
    ]


async def test_every_read_has_an_etag_and_answers_304_to_it(client: Client) -> None:
    """Each read answer carries an ETag naming the format version, the policy and the coding,
    `Cache-Control: private, no-cache` (a keyed, unpinned answer) and `Vary`; the same
    request with `If-None-Match` naming that tag (alone, in a list, weak, or `*`) is a 304
    with no body and the same tag; another tag gets the answer."""
    head = await post_seed(client)
    for url in read_urls(head):
        first = await client.get(url, headers=IDENTITY)
        assert first.status_code == 200, (url, first.text)
        etag = first.headers["etag"]
        if "format=csv" not in url:
            assert etag.startswith('"f1-credibility-v2.1-identity-'), (url, etag)
        assert first.headers["cache-control"] == "private, no-cache", url
        assert "Accept-Encoding" in first.headers["vary"], url
        for held in (etag, f'"nope", {etag}', f"W/{etag}", "*"):
            again = await client.get(url, headers={**IDENTITY, "if-none-match": held})
            assert again.status_code == 304, (url, held)
            assert again.content == b""
            assert again.headers["etag"] == etag
        other = await client.get(url, headers={**IDENTITY, "if-none-match": '"nope"'})
        assert (other.status_code, other.content) == (200, first.content), url


async def test_an_unpinned_answer_has_another_tag_after_an_append(client: Client) -> None:
    """The latest front's tag changes when the log grows (the answer names a new position),
    so the old tag gets the new answer, not a 304."""
    await post_seed(client)
    url = f"/v1/state?valid_at={DAY}"
    before = await client.get(url)
    await client.post("/v1/events", json=event_json())
    after = await client.get(url)
    assert after.headers["etag"] != before.headers["etag"]
    assert after.json()["frame"]["known_position"] == before.json()["frame"]["known_position"] + 1
    held = await client.get(url, headers={"if-none-match": before.headers["etag"]})
    assert held.status_code == 200


async def test_a_pinned_answer_is_immutable_only_at_or_below_the_head(
    client: Client, anonymous: Client
) -> None:
    """`known_at=position:N` with N at or below the head: `public, max-age=31536000,
    immutable` without a key (`private` with one), and the same bytes and tag after an
    append; N beyond the head is `no-cache` and its tag changes once the log reaches N."""
    head = await post_seed(client)
    pinned = f"/v1/state?valid_at={DAY}&known_at=position:{head - 3}"
    open_answer = await anonymous.get(pinned)
    assert open_answer.headers["cache-control"] == f"public, {IMMUTABLE}"
    keyed = await client.get(pinned)
    assert keyed.headers["cache-control"] == f"private, {IMMUTABLE}"
    at_head = await anonymous.get(f"/v1/state?valid_at={DAY}&known_at=position:{head}")
    assert at_head.headers["cache-control"] == f"public, {IMMUTABLE}"
    beyond = f"/v1/state?valid_at={DAY}&known_at=position:{head + 1}"
    early = await anonymous.get(beyond)
    assert early.headers["cache-control"] == "public, no-cache"
    await client.post("/v1/events", json=event_json())
    later = await anonymous.get(pinned)
    assert (later.content, later.headers["etag"]) == (
        open_answer.content,
        open_answer.headers["etag"],
    )
    held = await anonymous.get(pinned, headers={"if-none-match": open_answer.headers["etag"]})
    assert held.status_code == 304
    assert held.headers["cache-control"] == f"public, {IMMUTABLE}"
    reached = await anonymous.get(beyond)
    assert reached.headers["cache-control"] == f"public, {IMMUTABLE}"
    assert reached.headers["etag"] != early.headers["etag"]


async def test_only_answers_fixed_by_their_query_are_pinned(client: Client) -> None:
    """An answer as of now (`valid_at` left to the clock) or naming the registry's current
    version (a place's detail) is never immutable, even at a pinned position; the timeline,
    the changes, the extent, the place's events, the areas and the export are."""
    head = await post_seed(client)
    pin = f"known_at=position:{head}"
    for url in (f"/v1/state?{pin}", f"/v1/disputes?{pin}", f"/v1/places/sy-maskanah?{pin}"):
        assert (await client.get(url)).headers["cache-control"] == "private, no-cache", url
    for url in (
        f"/v1/places/sy-maskanah/timeline?{pin}",
        f"/v1/places/sy-maskanah/events?{pin}",
        f"/v1/state/changes?from=2017-01-01&to={DAY}&{pin}",
        f"/v1/state/extent?{pin}",
        f"/v1/state/areas?valid_at={DAY}&{pin}",
        f"/v1/disputes?valid_at={DAY}&{pin}",
        f"/v1/export?{pin}",
    ):
        answer = await client.get(url)
        assert answer.status_code == 200, (url, answer.text)
        assert answer.headers["cache-control"] == f"private, {IMMUTABLE}", url


async def test_a_pinned_tag_is_known_without_the_answer_and_varies_with_accept(
    client: Client,
) -> None:
    """A pinned answer's tag follows from what was asked: the JSON and the GeoJSON of the same
    query have different tags, each answers 304 to its own, and a tag held for one coding is
    honoured for it."""
    head = await post_seed(client)
    url = f"/v1/state?valid_at={DAY}&known_at=position:{head}"
    as_json = await client.get(url, headers={**IDENTITY, "accept": "application/json"})
    as_geojson = await client.get(url, headers={**IDENTITY, "accept": "application/geo+json"})
    assert as_geojson.headers["content-type"].startswith("application/geo+json")
    assert as_json.headers["etag"] != as_geojson.headers["etag"]
    for answer, accept in ((as_json, "application/json"), (as_geojson, "application/geo+json")):
        held = await client.get(
            url, headers={**IDENTITY, "accept": accept, "if-none-match": answer.headers["etag"]}
        )
        assert held.status_code == 304
    crossed = await client.get(
        url,
        headers={
            **IDENTITY,
            "accept": "application/json",
            "if-none-match": as_geojson.headers["etag"],
        },
    )
    assert crossed.status_code == 200


async def test_gzip_has_its_own_tag_and_the_same_content(client: Client) -> None:
    """With `Accept-Encoding: gzip`, an answer over the threshold is gzipped, with a tag
    naming gzip, unlike the identity answer's; both decode to the same bytes; each coding's
    tag gets its 304; a small answer stays identity."""
    head = await post_seed(client)
    for url in (f"/v1/state?valid_at={DAY}", f"/v1/state?valid_at={DAY}&known_at=position:{head}"):
        plain = await client.get(url, headers=IDENTITY)
        zipped = await client.get(url, headers=GZIP)
        assert "content-encoding" not in plain.headers
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == plain.content  # httpx decodes it
        assert "-gzip-" in zipped.headers["etag"]
        assert "-identity-" in plain.headers["etag"]
        assert zipped.headers["etag"] != plain.headers["etag"]
        assert zipped.headers["vary"] == plain.headers["vary"] == "Accept, Accept-Encoding"
        for etag, headers in ((zipped.headers["etag"], GZIP), (plain.headers["etag"], IDENTITY)):
            held = await client.get(url, headers={**headers, "if-none-match": etag})
            assert held.status_code == 304
    small = await client.get("/v1/audit/head", headers=GZIP)
    assert len(small.content) < 1024
    assert "content-encoding" not in small.headers
    csv_plain = await client.get(f"/v1/state?valid_at={DAY}&format=csv", headers=IDENTITY)
    csv_zipped = await client.get(f"/v1/state?valid_at={DAY}&format=csv", headers=GZIP)
    assert csv_zipped.headers["etag"] == csv_plain.headers["etag"][:-1] + '-gzip"'


async def test_the_gzip_threshold_is_a_setting(settings: Settings, admin_key: str) -> None:
    """`FRONTLINE_GZIP_MIN_BYTES` sets the smallest answer gzipped; 0 turns gzip off; the
    bytes on the wire are a gzip stream of the identity answer."""
    for threshold, expected in ((10, "gzip"), (0, None)):
        app = create_app(settings.with_(gzip_min_bytes=threshold))
        async with AsyncTestClient(app=app) as c:
            c.headers["authorization"] = f"Bearer {admin_key}"
            await c.post("/v1/events", json=event_json())
            async with c.stream("GET", "/v1/audit/head", headers=GZIP) as response:
                raw = b"".join([chunk async for chunk in response.aiter_raw()])
                assert response.headers.get("content-encoding") == expected
            plain = (await c.get("/v1/audit/head", headers=IDENTITY)).content
            assert (gzip.decompress(raw) if expected else raw) == plain


async def test_large_answers_are_gzipped_in_a_thread_at_the_fast_level(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bodies of THREAD_BYTES or more are compressed in a worker thread, and of
    FAST_GZIP_BYTES or more at level 1 (gzip's header says so: XFL 4, "fastest"); smaller
    ones at level 6 (XFL 0). Both decode to the identity answer, under a tag naming gzip.
    The thresholds are lowered so that the seed's front crosses them."""
    await post_seed(client)
    url = f"/v1/state?valid_at={DAY}"
    plain = (await client.get(url, headers=IDENTITY)).content
    assert len(plain) > 2048
    for fast_bytes, xfl in ((1024, 4), (10 * len(plain), 0)):
        monkeypatch.setattr(caching, "THREAD_BYTES", 1024)
        monkeypatch.setattr(caching, "FAST_GZIP_BYTES", fast_bytes)
        async with client.stream("GET", url, headers=GZIP) as response:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
            assert response.headers["content-encoding"] == "gzip"
            assert (
                response.headers["etag"].endswith('-gzip"') or "-gzip-" in response.headers["etag"]
            )
        assert raw[8] == xfl, fast_bytes
        assert gzip.decompress(raw) == plain


async def test_the_live_stream_is_not_buffered_or_compressed(
    settings: Settings, admin_key: str
) -> None:
    """A client accepting gzip gets the SSE stream's head at once and each event as it lands,
    uncompressed; the NDJSON replay streams too."""
    quick = settings.with_(stream_heartbeat=0.3)
    async with served(create_app(quick), quick) as port:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(
            f"GET /v1/events/stream HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Authorization: Bearer {admin_key}\r\nAccept-Encoding: gzip\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert head.startswith(b"HTTP/1.1 200")
        assert b"content-encoding" not in head.lower()
        assert b"etag" not in head.lower()
        first = await asyncio.wait_for(reader.readuntil(b": heartbeat\n\n"), 2)
        assert not first.startswith(b"\x1f\x8b")  # no gzip stream
        writer.close()
        await writer.wait_closed()


async def test_the_export_stream_keeps_its_tag_and_gets_the_policy(client: Client) -> None:
    """The export is streamed as it was (its own chain-derived tag, no gzip), immutable when
    pinned, and its own 304 carries the same policy."""
    head = await post_seed(client)
    url = f"/v1/export?known_at=position:{head}"
    answer = await client.get(url, headers=GZIP)
    assert "content-encoding" not in answer.headers
    assert answer.headers["cache-control"] == f"private, {IMMUTABLE}"
    held = await client.get(url, headers={"if-none-match": answer.headers["etag"]})
    assert held.status_code == 304
    assert held.headers["cache-control"] == f"private, {IMMUTABLE}"


async def test_errors_are_not_tagged(client: Client) -> None:
    """A refused read (422, 404) gets no ETag and no cache policy."""
    for url in ("/v1/state?limit=0", "/v1/places/sy-nowhere/timeline"):
        answer = await client.get(url)
        assert answer.status_code in (404, 422)
        assert "etag" not in answer.headers
        assert "immutable" not in answer.headers.get("cache-control", "")
