"""GET /v1/events and /v1/events/{id}: the log in position order, pages, streams, links."""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.conftest import assert_problem
from tests.payloads import at_place, event_json

Client = AsyncTestClient[Litestar]


async def _fill(client: Client, count: int) -> list[str]:
    ids = []
    for index in range(count):
        place = "sy-maskanah" if index % 2 == 0 else "sy-raqqa"
        source = "South Front" if index % 3 else "ANHA"
        event = at_place(place, source={"name": source}, type="control" if index % 4 else "capture")
        response = await client.post("/v1/events", json=event)
        assert response.status_code == 201
        ids.append(event["id"])
    return ids


async def test_pages_follow_positions_with_a_next_cursor(client: Client) -> None:
    """Pages in position order, followed by `next_cursor`, hold every event once; `next` and
    the Link header name the same next page; the last page (full or not) has none."""
    ids = await _fill(client, 7)
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        response = await client.get("/v1/events", params={"cursor": cursor, "limit": 3})
        page = response.json()
        pages += 1
        seen.extend(e["id"] for e in page["events"])
        positions = [e["position"] for e in page["events"]]
        assert positions == sorted(positions)
        if page["next_cursor"] is None:
            assert page["next"] is None
            assert "link" not in response.headers
            break
        assert page["next_cursor"] == str(positions[-1])
        assert page["next"] == f"/v1/events?limit=3&cursor={page['next_cursor']}"
        assert response.headers["link"] == f'<{page["next"]}>; rel="next"'
        cursor = page["next_cursor"]
    assert seen == ids
    assert pages == 3
    # A full last page is the last: 6 events in pages of 3 are two pages, not three.
    six = (await client.get("/v1/events", params={"after": 1, "limit": 3})).json()
    last = (await client.get(f"/v1/events?after=1&limit=3&cursor={six['next_cursor']}")).json()
    assert len(last["events"]) == 3
    assert last["next_cursor"] is None


async def test_after_starts_the_walk_and_next_keeps_the_query(client: Client) -> None:
    """`after` is where the first page starts; following `next` keeps `after` and the filters
    and walks the selection to its end, each event once; `filters` names them."""
    await _fill(client, 12)
    url: str | None = "/v1/events?after=2&place=sy-maskanah&limit=2"
    walked: list[int] = []
    while url is not None:
        page = (await client.get(url)).json()
        assert page["filters"] == {"place": "sy-maskanah"}
        walked.extend(e["position"] for e in page["events"])
        assert all(e["place"] == "sy-maskanah" for e in page["events"])
        url = page["next"]
        if url is not None:
            assert "after=2" in url
            assert "place=sy-maskanah" in url
    assert walked == [3, 5, 7, 9, 11]


async def test_bad_cursors_are_422_naming_cursor(client: Client) -> None:
    """A cursor that is not a position of the log is a 422 problem naming `cursor`."""
    for bad in ("x", "-1", "1.5", str(2**63), "9" * 20):
        assert_problem(await client.get("/v1/events", params={"cursor": bad}), 422, "cursor")


async def test_stored_event_carries_hashes_and_the_payload(client: Client) -> None:
    """Each event shows hash, prev_hash (chained) and the payload with its digest."""
    await _fill(client, 3)
    events = (await client.get("/v1/events")).json()["events"]
    assert events[0]["prev_hash"] == "00" * 32
    for before, current in itertools.pairwise(events):
        assert current["prev_hash"] == before["hash"]
    for event in events:
        payload = json.dumps(event["event"], sort_keys=True, separators=(",", ":"))
        assert hashlib.sha256(payload.encode()).hexdigest() == event["payload_digest"]


async def test_filters_by_place_type_and_source(client: Client) -> None:
    """place, type and source (any case or spacing) select events."""
    await _fill(client, 12)
    by_place = (await client.get("/v1/events", params={"place": "sy-raqqa"})).json()["events"]
    assert len(by_place) == 6
    assert {e["place"] for e in by_place} == {"sy-raqqa"}
    by_type = (await client.get("/v1/events", params={"type": "capture"})).json()["events"]
    assert {e["type"] for e in by_type} == {"capture"}
    assert len(by_type) == 3
    by_source = (await client.get("/v1/events", params={"source": " anha "})).json()["events"]
    assert {e["event"]["source"]["name"] for e in by_source} == {"ANHA"}
    assert len(by_source) == 4


async def test_ndjson_streams_the_whole_selection(client: Client) -> None:
    """Accept: application/x-ndjson streams every selected event, one per line."""
    ids = await _fill(client, 9)
    response = await client.get("/v1/events", headers={"accept": "application/x-ndjson"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["id"] for line in lines] == ids
    after = await client.get(
        "/v1/events", params={"after": 4}, headers={"accept": "application/x-ndjson"}
    )
    assert [json.loads(line)["position"] for line in after.text.splitlines()] == [5, 6, 7, 8, 9]


async def test_one_event_with_the_events_that_link_to_it(client: Client) -> None:
    """GET /v1/events/{id}: the event and relates_to read in reverse."""
    original = event_json()
    await client.post("/v1/events", json=original)
    denial = event_json(
        type="statement",
        side=None,
        source={"name": "ANHA"},
        relates_to=[{"event": original["id"], "relation": "denies"}],
    )
    await client.post("/v1/events", json=denial)
    body = (await client.get(f"/v1/events/{original['id']}")).json()
    assert body["event"]["id"] == original["id"]
    assert body["linked_from"] == [{"id": denial["id"], "position": 2, "relation": "denies"}]


async def test_unknown_event_is_a_404(client: Client) -> None:
    """An id no event has: 404 problem."""
    assert_problem(await client.get(f"/v1/events/{uuid.uuid4()}"), 404)


async def test_bad_query_parameters_are_422(client: Client) -> None:
    """Negative after, zero or oversized limit, unknown type, malformed id: 422 naming it."""
    assert_problem(await client.get("/v1/events", params={"after": -1}), 422, "after")
    assert_problem(await client.get("/v1/events", params={"after": "x"}), 422, "after")
    assert_problem(await client.get("/v1/events", params={"limit": 0}), 422, "limit")
    assert_problem(await client.get("/v1/events", params={"limit": 5000}), 422, "limit")
    assert_problem(await client.get("/v1/events", params={"type": "massacre"}), 422, "type")
    assert_problem(await client.get("/v1/events/not-a-uuid"), 422, "event_id")
