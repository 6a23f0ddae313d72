"""POST /v1/events: receipts, idempotency, atomic batches, preconditions, bad input."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import assert_problem, stored_count
from tests.payloads import at_place, event_json

Client = AsyncTestClient[Litestar]


async def test_single_event_gets_a_receipt(client: Client) -> None:
    """One event: 201 and a receipt with position, place version and commit position."""
    event = event_json()
    response = await client.post("/v1/events", json=event)
    assert response.status_code == 201, response.text
    (receipt,) = response.json()["receipts"]
    assert receipt["id"] == event["id"]
    assert receipt["position"] == 1
    assert receipt["place"] == "sy-maskanah"
    assert receipt["place_version"] == 1
    assert receipt["commit_position"] == 1
    assert receipt["duplicate"] is False
    assert receipt["recorded_at"].endswith("Z")


async def test_retry_returns_the_original_receipt(client: Client) -> None:
    """The same event sent twice: 200 and the first receipt, marked duplicate; stored once."""
    event = event_json()
    first = (await client.post("/v1/events", json=event)).json()["receipts"][0]
    await client.post("/v1/events", json=at_place("sy-raqqa"))
    again = await client.post("/v1/events", json=event)
    assert again.status_code == 200
    receipt = again.json()["receipts"][0]
    assert receipt == {**first, "duplicate": True}
    page = (await client.get("/v1/events")).json()
    assert [e["id"] for e in page["events"]].count(event["id"]) == 1


async def test_server_makes_an_id_when_none_is_given(client: Client) -> None:
    """An event without id gets a fresh UUID from the server."""
    response = await client.post("/v1/events", json=event_json(id=None))
    assert response.status_code == 201
    assert uuid.UUID(response.json()["receipts"][0]["id"]).version == 4


async def test_batch_is_atomic_and_shares_one_commit(client: Client) -> None:
    """A batch: receipts in order, dense positions, one commit position, versions per place."""
    events = [event_json(), at_place("sy-raqqa"), event_json(type="control")]
    response = await client.post("/v1/events", json={"events": events})
    assert response.status_code == 201
    receipts = response.json()["receipts"]
    assert [r["id"] for r in receipts] == [e["id"] for e in events]
    assert [r["position"] for r in receipts] == [1, 2, 3]
    assert {r["commit_position"] for r in receipts} == {3}
    assert [r["place_version"] for r in receipts] == [1, 1, 2]


async def test_one_bad_event_fails_the_whole_batch(
    client: Client, owner: asyncpg.Connection
) -> None:
    """A batch with one bad event is a 422 naming it by index, and nothing is written."""
    events = [event_json(), event_json(place={"lat": 95.0})]
    response = await client.post("/v1/events", json={"events": events})
    assert_problem(response, 422, "events[1].place.lat")
    assert await stored_count(owner) == 0


@pytest.mark.parametrize(
    ("expect", "actual"),
    [
        ({"place": "sy-maskanah", "version": 2}, 1),
        ({"place": "sy-maskanah", "version": "none"}, 1),
        ({"place": "sy-raqqa", "version": "any-existing"}, 0),
    ],
)
async def test_expectation_mismatch_is_a_409(
    client: Client, owner: asyncpg.Connection, expect: dict[str, Any], actual: int
) -> None:
    """A precondition that fails: 409 with the place and its current version; nothing written."""
    await client.post("/v1/events", json=event_json())
    batch = {"events": [event_json(), at_place("sy-raqqa")], "expect": [expect]}
    body = assert_problem(await client.post("/v1/events", json=batch), 409, "expect")
    assert body["place"] == expect["place"]
    assert body["actual"] == actual
    assert body["expected"] == expect["version"]
    assert await stored_count(owner) == 1


async def test_expectations_that_hold_let_the_batch_in(client: Client) -> None:
    """version n, none and any-existing, each holding: the batch is written."""
    await client.post("/v1/events", json=event_json())
    batch = {
        "events": [event_json(), at_place("sy-raqqa")],
        "expect": [
            {"place": "sy-maskanah", "version": 1},
            {"place": "sy-raqqa", "version": "none"},
            {"place": "sy-maskanah", "version": "any-existing"},
        ],
    }
    response = await client.post("/v1/events", json=batch)
    assert response.status_code == 201, response.text


async def test_retried_batch_gets_receipts_even_if_expect_no_longer_holds(client: Client) -> None:
    """Ids are checked before expect: a stored batch retried gets its original receipts."""
    batch = {"events": [event_json()], "expect": [{"place": "sy-maskanah", "version": "none"}]}
    first = await client.post("/v1/events", json=batch)
    assert first.status_code == 201
    again = await client.post("/v1/events", json=batch)
    assert again.status_code == 200
    assert again.json()["receipts"][0]["position"] == first.json()["receipts"][0]["position"]


async def test_same_id_other_content_is_a_422(client: Client, owner: asyncpg.Connection) -> None:
    """An id reused with different content: 422 naming the id; the original stays."""
    event = event_json()
    await client.post("/v1/events", json=event)
    changed = {**event, "side": "isis"}
    body = assert_problem(await client.post("/v1/events", json=changed), 422, "id")
    assert body["id"] == event["id"]
    assert await stored_count(owner) == 1


async def test_partly_stored_batch_is_a_422(client: Client, owner: asyncpg.Connection) -> None:
    """A batch of which some events are stored and some not: 422, nothing more written."""
    stored = event_json()
    await client.post("/v1/events", json=stored)
    response = await client.post("/v1/events", json={"events": [stored, event_json()]})
    assert_problem(response, 422, "events")
    assert await stored_count(owner) == 1


REPEATED = str(uuid.uuid4())
BAD_EVENTS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown type", event_json(type="massacre"), "type"),
    ("missing side on capture", event_json(side=None), "side"),
    ("end before start", event_json(occurred={"start": "2017-06-03", "end": "2017-06-01"}),
     "occurred.end"),
    ("naive datetime", event_json(occurred={"start": "2017-06-03T10:00:00"}), "occurred.start"),
    ("not a date", event_json(occurred={"start": "June 3rd"}), "occurred.start"),
    ("latitude out of range", event_json(place={"lat": 91.0}), "place.lat"),
    ("longitude without latitude", event_json(place={"lat": None}), "place.lat"),
    ("reliability outside A-F", event_json(source={"reliability": "G"}), "source.reliability"),
    ("credibility 0", event_json(credibility=0), "credibility"),
    ("credibility 7", event_json(credibility=7), "credibility"),
    ("unknown hedge", event_json(hedge="rumoured"), "hedge"),
    ("unknown field", event_json(weather="sunny"), "weather"),
    ("server field position", event_json(position=7), "position"),
    ("server field recorded_at", event_json(recorded_at="2017-06-05T00:00:00Z"), "recorded_at"),
    ("server field hash", event_json(hash="00"), "hash"),
    ("server field version", event_json(version=3), "version"),
    ("bad place id", event_json(place={"id": "Sy Maskanah"}), "place.id"),
    ("control character in a name", event_json(place={"name": "Mask\x00anah"}), "place.name"),
    ("not a uuid", event_json(id="not-a-uuid"), "id"),
    ("link to a missing event",
     event_json(relates_to=[{"event": str(uuid.uuid4()), "relation": "denies"}]),
     "relates_to[0].event"),
    ("statement without links", event_json(type="statement", relates_to=[]), "relates_to"),
    ("the same link twice",
     event_json(relates_to=[{"event": REPEATED, "relation": "denies"}] * 2),
     "relates_to[1]"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "event", "field"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
async def test_bad_event_is_a_422_naming_the_field(
    client: Client, owner: asyncpg.Connection, case: str, event: dict[str, Any], field: str
) -> None:
    """Each contract violation: 422 problem naming the field; nothing written."""
    body = assert_problem(await client.post("/v1/events", json=event), 422, field)
    assert field.split(".")[-1].split("[")[0] in body["detail"], case
    assert await stored_count(owner) == 0


async def test_retraction_by_another_source_is_a_403(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Only an event's own source may retract it (403 naming the link); another may deny it."""
    original = event_json()
    await client.post("/v1/events", json=original)
    link = [{"event": original["id"], "relation": "retracts"}]
    other = event_json(type="statement", side=None, relates_to=link, source={"name": "ANHA"})
    assert_problem(await client.post("/v1/events", json=other), 403, "relates_to[0].event")
    own = event_json(type="statement", side=None, relates_to=link,
                     source={"name": "  south   FRONT "})  # fmt: skip
    assert (await client.post("/v1/events", json=own)).status_code == 201
    denial = event_json(type="statement", side=None, source={"name": "ANHA"},
                        relates_to=[{"event": original["id"], "relation": "denies"}])  # fmt: skip
    assert (await client.post("/v1/events", json=denial)).status_code == 201
    assert await stored_count(owner) == 3


async def test_link_to_another_place_is_a_422(client: Client) -> None:
    """Links stay within one place: each event is about one place."""
    original = event_json()
    await client.post("/v1/events", json=original)
    link = [{"event": original["id"], "relation": "denies"}]
    response = await client.post("/v1/events", json=at_place("sy-raqqa", relates_to=link))
    assert_problem(response, 422, "relates_to[0].event")


async def test_malformed_json_is_a_400(client: Client, owner: asyncpg.Connection) -> None:
    """A body that is not JSON: 400 problem."""
    response = await client.post(
        "/v1/events", content=b'{"type": "capture",', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400)
    assert await stored_count(owner) == 0


async def test_json_that_is_not_an_object_is_a_422(client: Client) -> None:
    """Valid JSON of the wrong shape (a list) is a 422, not a 500."""
    assert_problem(await client.post("/v1/events", json=[1, 2]), 422)


async def test_casualty_figures_out_of_order_are_stored_and_flagged(client: Client) -> None:
    """low <= killed <= high broken: stored as given, flagged in the receipt."""
    event = event_json(
        type="casualties", side=None, casualties={"killed": 21, "low": 30, "high": 20}
    )
    response = await client.post("/v1/events", json=event)
    assert response.status_code == 201
    flags = response.json()["receipts"][0]["flags"]
    assert "casualties.low exceeds casualties.killed" in flags
    assert "casualties.killed exceeds casualties.high" in flags


async def test_limits_on_body_and_batch(
    admin_key: str, settings: Settings, owner: asyncpg.Connection
) -> None:
    """Over the body limit: 413. Over the batch limit: 422 naming events. Nothing written."""
    small = create_app(settings.with_(max_body_bytes=2000, max_batch=2))
    async with AsyncTestClient(app=small) as client:
        client.headers["authorization"] = f"Bearer {admin_key}"
        big = event_json(notes="x" * 3000)
        assert_problem(await client.post("/v1/events", json=big), 413)
        batch = {"events": [event_json(), event_json(), event_json()]}
        assert_problem(await client.post("/v1/events", json=batch), 422, "events")
    assert await stored_count(owner) == 0
