"""The front over HTTP: state, timelines, disputes, changes, place events, rebuild, errors.

Every test posts hand-built events through ``POST /v1/events`` and reads the answers of the
real app, so what is pinned is the whole path: append, projection in the append transaction,
bitemporal rows, and the reads of DESIGN sections 4 and 5.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Final

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from contracts.front import StatePage
from service.app import create_app
from service.settings import Settings
from tests.api.conftest import assert_problem
from tests.payloads import at_place, event_json

Client = AsyncTestClient[Litestar]

GEOJSON: Final = "application/geo+json"
GOV: Final = "syrian-government"

#: A neutral source graded B: a claim it makes scores 0.8 x 0.6 x 0.8 = 0.384 (rule 5).
REUTERS: Final = {"name": "Reuters", "reliability": "B", "alignment": "neutral"}
#: South Front (the default source of ``event_json``), graded C and aligned with the
#: government: its government claims are self-serving, 0.6 x 0.6 x 0.8 x 0.5 = 0.144.
SOUTH_FRONT: Final = "South Front"

DAY_1: Final = {"start": "2017-06-01", "precision": "day"}
DAY_2: Final = {"start": "2017-06-02", "precision": "day"}
DAY_3: Final = {"start": "2017-06-03", "precision": "day"}
DAY_5: Final = {"start": "2017-06-05", "precision": "day"}
MAY_1: Final = {"start": "2017-05-01", "precision": "day"}
WEEK_OF_JUNE_1: Final = {"start": "2017-06-01", "precision": "week"}  # 05-29 to 06-05

MASKANAH: Final = "sy-maskanah"
RAQQA: Final[dict[str, Any]] = {
    "id": "sy-raqqa",
    "name": "Raqqa",
    "kind": "city",
    "lat": 35.95,
    "lon": 39.01,
}
DARAA: Final[dict[str, Any]] = {
    "id": "sy-daraa",
    "name": "Daraa",
    "kind": "city",
    "lat": 32.62,
    "lon": 36.1,
}
DEIR: Final[dict[str, Any]] = {
    "id": "sy-deir-ezzor",
    "name": "Deir Ezzor",
    "kind": "city",
    "lat": 35.33,
    "lon": 40.14,
}
N4: Final[dict[str, Any]] = {
    "id": "sy-n4",
    "name": "N4 highway",
    "kind": "road",
    "lat": None,
    "lon": None,
}


# --------------------------------------------------------------------------------------------
# Helpers


async def post(client: Client, *events: dict[str, Any]) -> list[dict[str, Any]]:
    """Append one event, or several as one atomic batch (one commit); return the receipts."""
    body: dict[str, Any] = events[0] if len(events) == 1 else {"events": list(events)}
    response = await client.post("/v1/events", json=body)
    assert response.status_code == 201, response.text
    receipts: list[dict[str, Any]] = response.json()["receipts"]
    return receipts


async def get_json(client: Client, path: str, **params: str | int) -> dict[str, Any]:
    """GET an answer that must be a 200; its JSON body."""
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def state(client: Client, **params: str | int) -> dict[str, Any]:
    """GET /v1/state."""
    return await get_json(client, "/v1/state", **params)


def ids(page: dict[str, Any]) -> list[str]:
    """The place ids of a page of the front, in answer order."""
    return [item["place"]["id"] for item in page["items"]]


def by_id(page: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each place's segment in a page of the front."""
    return {item["place"]["id"]: item["segment"] for item in page["items"]}


def isis_capture(**changes: Any) -> dict[str, Any]:
    """ISIS captures Maskanah from the government (by default on 06-03, reported by Reuters)."""
    fields: dict[str, Any] = {
        "side": "isis",
        "opponent": GOV,
        "actor": None,
        "source": REUTERS,
        "quote": "ISIS retook Maskanah",
    }
    return event_json(**{**fields, **changes})


def statement(relation: str, target: str, **changes: Any) -> dict[str, Any]:
    """A statement about Maskanah linking to an earlier event."""
    fields: dict[str, Any] = {
        "type": "statement",
        "side": None,
        "opponent": None,
        "actor": None,
        "relates_to": [{"event": target, "relation": relation}],
        "quote": f"A statement that {relation} an earlier report",
    }
    return event_json(**{**fields, **changes})


def shifted(stamp: str, **delta: float) -> str:
    """An instant of a receipt (``...Z``) moved by ``delta``, written with a +02:00 offset."""
    moment = datetime.fromisoformat(stamp) + timedelta(**delta)
    return moment.astimezone(timezone(timedelta(hours=2))).isoformat()


# --------------------------------------------------------------------------------------------
# Bitemporal: valid_at and known_at


async def test_a_late_report_changes_the_story_but_not_what_was_known_before(
    client: Client,
) -> None:
    """A late, better-graded ISIS report changes the state at 06-03; ``known_at`` at the first
    commit (as ``position:N`` or as its ``recorded_at``) still gives the government story,
    and the default (latest) gives the new one."""
    gov = event_json()
    (first,) = await post(client, gov)
    p1 = first["commit_position"]
    late = isis_capture(occurred=DAY_3)
    second = await post(client, at_place("sy-raqqa", side="isis", type="control"), late)
    p2 = second[-1]["commit_position"]
    assert (p1, p2) == (1, 3)

    before = await state(client, valid_at="2017-06-03", known_at=f"position:{p1}")
    assert before["frame"]["known_position"] == p1
    assert ids(before) == [MASKANAH]
    old = by_id(before)[MASKANAH]
    assert (old["controller"], old["disputed"], old["events"]) == (GOV, False, [gov["id"]])

    now = await state(client, valid_at="2017-06-03")
    assert now["frame"]["known_position"] == p2
    assert ids(now) == [MASKANAH, "sy-raqqa"]
    new = by_id(now)[MASKANAH]
    assert (new["controller"], new["disputed"]) == ("isis", True)

    timeline_then = await get_json(
        client, f"/v1/places/{MASKANAH}/timeline", known_at=f"position:{p1}"
    )
    assert timeline_then["frame"]["known_position"] == p1
    assert [
        (s["valid_from"], s["valid_to"], s["controller"]) for s in timeline_then["segments"]
    ] == [("2017-06-03T00:00:00Z", None, GOV)]
    timeline_now = await get_json(client, f"/v1/places/{MASKANAH}/timeline")
    assert [
        (s["valid_from"], s["valid_to"], s["controller"], s["disputed"])
        for s in timeline_now["segments"]
    ] == [
        ("2017-06-03T00:00:00Z", None, "isis", True),  # open: no later report settles it
    ]

    detail_then = await get_json(
        client, f"/v1/places/{MASKANAH}", valid_at="2017-06-03", known_at=f"position:{p1}"
    )
    assert detail_then["segment"]["controller"] == GOV
    detail_now = await get_json(client, f"/v1/places/{MASKANAH}", valid_at="2017-06-03")
    assert detail_now["segment"]["controller"] == "isis"

    # known_at as a timestamp: the receipt's recorded_at is the commit, in any offset.
    for known in (first["recorded_at"], shifted(first["recorded_at"])):
        as_of_time = await state(client, valid_at="2017-06-03", known_at=known)
        assert as_of_time == before
        timeline = await get_json(client, f"/v1/places/{MASKANAH}/timeline", known_at=known)
        assert timeline == timeline_then
    assert await state(client, valid_at="2017-06-03", known_at=second[0]["recorded_at"]) == now


async def test_known_at_before_the_first_commit_is_an_empty_front(client: Client) -> None:
    """``known_at=position:0``, or a time before the first commit, knows nothing: no place."""
    (receipt,) = await post(client, event_json())
    for known in ("position:0", shifted(receipt["recorded_at"], microseconds=-1), "2000-01-01"):
        page = await state(client, valid_at="2017-06-05", known_at=known)
        assert page["items"] == []
        assert page["frame"]["known_position"] == 0
        timeline = await get_json(client, f"/v1/places/{MASKANAH}/timeline", known_at=known)
        assert timeline["segments"] == []
        events = await get_json(client, f"/v1/places/{MASKANAH}/events", known_at=known)
        assert (events["known_position"], events["events"]) == (0, [])


async def test_known_at_inside_a_batch_resolves_to_the_commit_before(client: Client) -> None:
    """Nobody could observe the inside of a commit: ``position:N`` in the middle of a batch
    answers as of the previous commit, and a position past the head as of the head."""
    (first,) = await post(client, event_json())
    batch = await post(
        client,
        at_place("sy-raqqa", side="isis", type="control"),
        at_place("sy-tabqa", side="isis", type="control"),
        isis_capture(occurred=DAY_3),
    )
    assert [r["position"] for r in batch] == [2, 3, 4]
    assert {r["commit_position"] for r in batch} == {4}
    as_of_first = await state(client, valid_at="2017-06-03", known_at="position:1")
    for inside in (2, 3):
        page = await state(client, valid_at="2017-06-03", known_at=f"position:{inside}")
        assert page == as_of_first
        assert page["frame"]["known_position"] == first["commit_position"]
        timeline = await get_json(
            client, f"/v1/places/{MASKANAH}/timeline", known_at=f"position:{inside}"
        )
        assert timeline["frame"]["known_position"] == 1
        assert [s["controller"] for s in timeline["segments"]] == [GOV]
    for past in (4, 5, 1000):
        page = await state(client, valid_at="2017-06-03", known_at=f"position:{past}")
        assert page["frame"]["known_position"] == 4
        assert ids(page) == [MASKANAH, "sy-raqqa", "sy-tabqa"]


async def test_a_retraction_by_its_own_source_empties_the_place_but_not_the_past(
    client: Client,
) -> None:
    """The source retracts its only claim: the place leaves the front (no segment now), while
    ``known_at`` before the retraction still shows the capture."""
    capture = event_json()
    await post(client, capture)
    await post(client, statement("retracts", capture["id"]))
    assert (await state(client, valid_at="2017-06-05"))["items"] == []
    detail = await get_json(client, f"/v1/places/{MASKANAH}", valid_at="2017-06-05")
    assert (detail["segment"], detail["version"], detail["frame"]["known_position"]) == (None, 2, 2)
    timeline = await get_json(client, f"/v1/places/{MASKANAH}/timeline")
    assert timeline["segments"] == []
    then = await state(client, valid_at="2017-06-05", known_at="position:1")
    assert by_id(then)[MASKANAH]["controller"] == GOV
    old_detail = await get_json(
        client, f"/v1/places/{MASKANAH}", valid_at="2017-06-05", known_at="position:1"
    )
    assert old_detail["segment"]["controller"] == GOV


async def test_valid_at_picks_the_segment_holding_that_instant(client: Client) -> None:
    """``valid_at`` is an instant: a date is its first instant (UTC), a datetime with an offset
    is converted to UTC; intervals are half-open, and before the first claim there is none."""
    await post(
        client,
        isis_capture(occurred=MAY_1, opponent=None, type="control"),
        event_json(occurred=DAY_3),
    )
    cases = {
        "2017-04-30": None,
        "2017-05-01": "isis",
        "2017-06-02T23:59:59.999999Z": "isis",
        "2017-06-03": GOV,
        # 02:00 on 06-03 in +03:00 is 23:00 on 06-02 in UTC: still ISIS's.
        "2017-06-03T02:00:00+03:00": "isis",
        "2017-06-03T01:00:00+01:00": GOV,
    }
    for valid_at, controller in cases.items():
        page = await state(client, valid_at=valid_at)
        found = by_id(page).get(MASKANAH)
        assert (found["controller"] if found else None) == controller, valid_at
        detail = await get_json(client, f"/v1/places/{MASKANAH}", valid_at=valid_at)
        segment = detail["segment"]
        assert (segment["controller"] if segment else None) == controller, valid_at


# --------------------------------------------------------------------------------------------
# Frames


async def test_every_answer_names_policy_valid_time_and_known_position(client: Client) -> None:
    """Every answer about the front carries policy ``credibility-v2`` version 1, the valid time
    it is about (null for a whole timeline) and the commit position it is as of."""
    await post(client, event_json(), isis_capture(occurred=DAY_3))
    frames = {
        "state": (await state(client, valid_at="2017-06-03"))["frame"],
        "geojson": (await state(client, valid_at="2017-06-03", format="geojson"))["frame"],
        "disputes": (await get_json(client, "/v1/disputes", valid_at="2017-06-03"))["frame"],
        "place": (await get_json(client, f"/v1/places/{MASKANAH}", valid_at="2017-06-03"))["frame"],
    }
    for name, frame in frames.items():
        assert frame == {
            "policy": "credibility-v2",
            "policy_version": 1,
            "valid_at": "2017-06-03T00:00:00Z",
            "known_position": 2,
        }, name
    timeline = await get_json(client, f"/v1/places/{MASKANAH}/timeline")
    assert timeline["frame"] == {
        "policy": "credibility-v2",
        "policy_version": 1,
        "valid_at": None,
        "known_position": 2,
    }
    default = await state(client)
    assert set(default["frame"]) == {"policy", "policy_version", "valid_at", "known_position"}
    assert default["frame"]["valid_at"].endswith("Z")  # now, in UTC
    changes = await get_json(
        client, "/v1/state/changes", **{"from": "2017-06-01", "to": "2017-06-05"}
    )
    assert changes["frame"] == {**timeline["frame"], "valid_at": None}
    assert (changes["from"], changes["to"]) == ("2017-06-01T00:00:00Z", "2017-06-05T00:00:00Z")
    events = await get_json(client, f"/v1/places/{MASKANAH}/events")
    assert events["known_position"] == 2


# --------------------------------------------------------------------------------------------
# Filters and pages


async def _post_front(client: Client) -> None:
    """Five places at 06-05: Maskanah (gov), Raqqa (isis), Daraa (gov, encircled by hts),
    Deir Ezzor (disputed, isis wins), and the N4 (gov, no point)."""
    await post(
        client,
        event_json(),
        event_json(place=RAQQA, side="isis", opponent=None, type="control", occurred=MAY_1),
        event_json(place=DARAA, type="control", opponent=None, occurred=MAY_1),
        event_json(place=DARAA, type="encirclement", side="hts", opponent=GOV, occurred=DAY_2),
        event_json(place=DEIR, occurred=DAY_5),
        isis_capture(place=DEIR, occurred=DAY_5),
        event_json(place=N4, type="control", opponent=None, occurred=DAY_1),
    )


async def test_bbox_keeps_located_places_inside_it_and_never_unlocated_ones(
    client: Client,
) -> None:
    """``bbox=west,south,east,north`` keeps the places whose point lies inside (edges
    included); a place without a point is never inside a box."""
    await _post_front(client)
    everything = await state(client, valid_at="2017-06-05")
    assert ids(everything) == [DARAA["id"], DEIR["id"], MASKANAH, N4["id"], RAQQA["id"]]
    cases = {
        "-180,-90,180,90": [DARAA["id"], DEIR["id"], MASKANAH, RAQQA["id"]],
        "37.5,35.5,38.5,36.5": [MASKANAH],
        "38.04,35.96,38.04,35.96": [MASKANAH],  # a degenerate box on the point itself
        "38.5,35,40.5,36.5": [DEIR["id"], RAQQA["id"]],
        "0,0,1,1": [],
    }
    for box, expected in cases.items():
        assert ids(await state(client, valid_at="2017-06-05", bbox=box)) == expected, box
    geo = await state(client, valid_at="2017-06-05", bbox="-180,-90,180,90", format="geojson")
    assert geo["unlocated"] == []
    assert [f["id"] for f in geo["features"]] == [DARAA["id"], DEIR["id"], MASKANAH, RAQQA["id"]]


async def test_a_box_answers_what_the_whole_front_says_of_the_places_inside_it(
    client: Client,
) -> None:
    """The box query (places by point, then one segment each) and the whole-front query
    agree at every known position and valid time, page by page, filters included."""
    await _post_front(client)
    await post(client, isis_capture(place=RAQQA, occurred=DAY_2))
    head = (await get_json(client, "/v1/state"))["frame"]["known_position"]
    inside = {DEIR["id"], MASKANAH, RAQQA["id"]}  # DARAA lies south of the box
    box = "37,34.5,41,37"
    answered: set[str] = set()
    for position in range(1, head + 1):
        for day in ("2017-05-01", "2017-06-02", "2017-06-05"):
            at: dict[str, str | int] = {"valid_at": day, "known_at": f"position:{position}"}
            whole = (await state(client, **at))["items"]
            expected = [item for item in whole if item["place"]["id"] in inside]
            answered.update(item["place"]["id"] for item in expected)
            assert (await state(client, **at, bbox=box))["items"] == expected, at
            paged: list[dict[str, Any]] = []
            cursor: str | None = ""
            while cursor is not None:
                page = await state(client, **at, bbox=box, limit=1, cursor=cursor)
                paged.extend(page["items"])
                cursor = page["next_cursor"]
            assert paged == expected, at
            for side in ("isis", GOV):
                filtered = [i for i in expected if i["segment"]["controller"] == side]
                assert (await state(client, **at, bbox=box, side=side))["items"] == filtered
    assert answered == inside


async def test_state_page_bytes_are_a_state_page_as_msgspec_encodes_it(client: Client) -> None:
    """The JSON answer passes stored segments through undecoded; its bytes are exactly
    those of the contract's ``StatePage`` holding the decoded segments, box or not."""
    await _post_front(client)
    for query in ({}, {"bbox": "-180,-90,180,90"}, {"limit": 2}):
        response = await client.get("/v1/state", params={"valid_at": "2017-06-05", **query})
        assert response.status_code == 200
        page = msgspec.json.decode(response.content, type=StatePage)
        assert page.items
        assert msgspec.json.encode(page) == response.content


async def test_side_status_and_disputed_filters(client: Client) -> None:
    """``side`` keeps the places that side controls, ``status`` one status, ``disputed`` the
    (un)disputed places; filters combine."""
    await _post_front(client)
    at = {"valid_at": "2017-06-05"}
    assert ids(await state(client, **at, side="isis")) == [DEIR["id"], RAQQA["id"]]
    assert ids(await state(client, **at, side=GOV)) == [DARAA["id"], MASKANAH, N4["id"]]
    assert ids(await state(client, **at, side="sdf")) == []
    encircled = await state(client, **at, status="encircled")
    assert ids(encircled) == [DARAA["id"]]
    assert by_id(encircled)[DARAA["id"]]["status_by"] == "hts"
    assert ids(await state(client, **at, status="controlled")) == [
        DEIR["id"],
        MASKANAH,
        N4["id"],
        RAQQA["id"],
    ]
    assert ids(await state(client, **at, status="contested")) == []
    assert ids(await state(client, **at, disputed="true")) == [DEIR["id"]]
    assert ids(await state(client, **at, disputed="false")) == [
        DARAA["id"],
        MASKANAH,
        N4["id"],
        RAQQA["id"],
    ]
    assert ids(await state(client, **at, side="isis", disputed="false")) == [RAQQA["id"]]
    assert ids(await state(client, **at, side=GOV, status="controlled", bbox="30,30,40,40")) == [
        MASKANAH
    ]


async def test_pages_walk_every_place_once_in_id_order(client: Client) -> None:
    """Following ``next_cursor`` with any ``limit`` visits every place exactly once, in id
    order, pages never exceed the limit, and the last page's cursor is null; the GeoJSON
    answer pages the same way."""
    names = ["sy-g", "sy-c", "sy-a", "sy-f", "sy-b", "sy-e", "sy-d"]
    await post(client, *(at_place(name) for name in names))
    for limit in (1, 2, 3, 7, 8):
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(len(names) + 2):
            params: dict[str, str | int] = {"valid_at": "2017-06-05", "limit": limit}
            if cursor is not None:
                params["cursor"] = cursor
            page = await state(client, **params)
            assert 0 < len(page["items"]) <= limit
            seen.extend(ids(page))
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert cursor == seen[-1]
        assert cursor is None, limit
        assert seen == sorted(names), limit
        # Every place here is unlocated: the GeoJSON page lists them apart, same cursor.
        geo = await state(client, valid_at="2017-06-05", limit=limit, format="geojson")
        assert geo["features"] == []
        assert [s["place"]["id"] for s in geo["unlocated"]] == sorted(names)[:limit]
        assert geo["next_cursor"] == (sorted(names)[limit - 1] if limit < len(names) else None)


async def test_limit_is_capped_by_max_page(
    admin_key: str, client: Client, settings: Settings
) -> None:
    """``limit`` up to FRONTLINE_MAX_PAGE (default 1000) is served; above it is a 422 naming
    ``limit``, on /v1/state and /v1/disputes; a configured cap is honoured."""
    await post(client, event_json())
    assert ids(await state(client, valid_at="2017-06-05", limit=1000)) == [MASKANAH]
    for path in ("/v1/state", "/v1/disputes"):
        assert_problem(await client.get(path, params={"limit": 1001}), 422, "limit")
        assert_problem(await client.get(path, params={"limit": 0}), 422, "limit")
    async with AsyncTestClient(app=create_app(settings.with_(max_page=3))) as small:
        small.headers["authorization"] = f"Bearer {admin_key}"
        assert (await small.get("/v1/state", params={"limit": 3})).status_code == 200
        assert_problem(await small.get("/v1/state", params={"limit": 4}), 422, "limit")
        assert_problem(await small.get("/v1/disputes", params={"limit": 4}), 422, "limit")


# --------------------------------------------------------------------------------------------
# Disputes


async def test_disputes_list_every_claim_each_support_and_why_the_winner_won(
    client: Client,
) -> None:
    """Two sources give Maskanah to different sides on 06-03 (a week-long ISIS capture and a
    one-day government capture inside it): /v1/disputes lists the place on that day with both
    counted claims (side, source, score, event), each side's support, the reason, and the
    better-supported side as controller; the rest of the week, decided by the ISIS claim
    alone, closes the dispute; undisputed places are not listed."""
    gov = event_json()  # South Front, 06-03: self-serving, 0.144
    isis = isis_capture(occurred=WEEK_OF_JUNE_1)  # Reuters, 05-29 to 06-05: 0.384
    await post(client, gov, isis, event_json(place=RAQQA, side="isis", type="control"))
    page = await get_json(client, "/v1/disputes", valid_at="2017-06-03")
    assert ids(page) == [MASKANAH]
    assert page["next_cursor"] is None
    segment = page["items"][0]["segment"]
    assert segment["valid_from"] == "2017-06-03T00:00:00Z"  # the piece both claims cover
    assert segment["valid_to"] == "2017-06-04T00:00:00Z"
    assert (segment["controller"], segment["status"], segment["disputed"]) == (
        "isis",
        "controlled",
        True,
    )
    assert (segment["confidence"], segment["basis"]) == (38, "assessed")
    assert segment["held_since"] == "2017-05-29T00:00:00Z"
    assert segment["claims"] == [
        {"side": "isis", "source": "Reuters", "score": 0.384, "event": isis["id"],
         "link": "direct", "about": None},
        {"side": GOV, "source": SOUTH_FRONT, "score": 0.144, "event": gov["id"],
         "link": "direct", "about": None},
    ]  # fmt: skip
    assert segment["supports"] == [
        {"side": "isis", "support": 0.384, "sources": 1, "claims": 1},
        {"side": GOV, "support": 0.144, "sources": 1, "claims": 1},
    ]
    assert segment["reason"] == (
        "A report of a change of hands covers this time, so the claims covering it decide. "
        "isis has the higher support: isis 38.40% (1 source), syrian-government 14.40% "
        "(1 source)."
    )
    assert segment["events"] == [isis["id"]]
    # The same segment through /v1/state?disputed=true and the place itself.
    assert (await state(client, valid_at="2017-06-03", disputed="true"))["items"] == page["items"]
    detail = await get_json(client, f"/v1/places/{MASKANAH}", valid_at="2017-06-03T12:00:00Z")
    assert detail["segment"] == segment
    # Before and after the disputed piece: nothing disputed (ISIS persists, undisputed).
    for valid_at in ("2017-05-30", "2017-06-04", "2017-06-05"):
        assert (await get_json(client, "/v1/disputes", valid_at=valid_at))["items"] == []
    after = by_id(await state(client, valid_at="2017-06-05"))[MASKANAH]
    assert (after["controller"], after["disputed"], after["claims"]) == ("isis", False, [])


# --------------------------------------------------------------------------------------------
# A place's events


async def test_place_events_show_links_both_ways_and_what_is_in_force(client: Client) -> None:
    """/v1/places/{id}/events lists every event in position order with its outgoing links
    (``relates_to``) and the links pointing at it (``linked_from``); a retracted event stays
    listed with ``in_force`` false, and a retraction of the retraction restores it."""
    capture = event_json()
    denial = statement("denies", capture["id"], source=REUTERS)
    retraction = statement("retracts", capture["id"])
    await post(client, capture)
    await post(client, denial)
    await post(client, retraction, at_place("sy-raqqa"))
    answer = await get_json(client, f"/v1/places/{MASKANAH}/events")
    assert answer["known_position"] == 4
    assert answer["place"]["id"] == MASKANAH
    listed = answer["events"]
    assert [(e["position"], e["id"], e["type"], e["source"], e["in_force"]) for e in listed] == [
        (1, capture["id"], "capture", SOUTH_FRONT, False),
        (2, denial["id"], "statement", "Reuters", True),
        (3, retraction["id"], "statement", SOUTH_FRONT, True),
    ]
    assert listed[0]["relates_to"] == []
    assert listed[0]["linked_from"] == [
        {"event": denial["id"], "relation": "denies"},
        {"event": retraction["id"], "relation": "retracts"},
    ]
    assert listed[1]["relates_to"] == [{"event": capture["id"], "relation": "denies"}]
    assert listed[2]["relates_to"] == [{"event": capture["id"], "relation": "retracts"}]
    assert listed[1]["linked_from"] == listed[2]["linked_from"] == []
    assert listed[0]["event"]["id"] == capture["id"]
    assert listed[0]["event"]["quote"] == capture["quote"]
    assert all(e["recorded_at"].endswith("Z") for e in listed)
    # Rule 1: the denial stands on its own after the retraction; it gives the place to isis.
    now = by_id(await state(client, valid_at="2017-06-05"))[MASKANAH]
    assert (now["controller"], now["events"]) == ("isis", [denial["id"]])

    # As known at position 2: the capture was still in force, denied but not retracted.
    then = await get_json(client, f"/v1/places/{MASKANAH}/events", known_at="position:2")
    assert then["known_position"] == 2
    assert [(e["id"], e["in_force"]) for e in then["events"]] == [
        (capture["id"], True),
        (denial["id"], True),
    ]
    assert then["events"][0]["linked_from"] == [{"event": denial["id"], "relation": "denies"}]

    # The source retracts its retraction: the capture is in force again.
    restore = statement("retracts", retraction["id"])
    await post(client, restore)
    again = (await get_json(client, f"/v1/places/{MASKANAH}/events"))["events"]
    assert [(e["id"], e["in_force"]) for e in again] == [
        (capture["id"], True),
        (denial["id"], True),
        (retraction["id"], False),
        (restore["id"], True),
    ]
    assert again[2]["linked_from"] == [{"event": restore["id"], "relation": "retracts"}]


# --------------------------------------------------------------------------------------------
# Rebuild


async def _answers(client: Client, head: int, stamps: list[str]) -> dict[str, bytes]:
    """The bytes of every read answer, at several valid times and known positions."""
    places = [MASKANAH, "sy-raqqa", DARAA["id"], N4["id"]]
    knowns = ["", *(f"position:{n}" for n in range(head + 2)), *stamps]
    answers: dict[str, bytes] = {}
    for known in knowns:
        for valid_at in ("2017-05-01", "2017-06-02", "2017-06-03", "2017-06-05"):
            for path, extra in (
                ("/v1/state", {}),
                ("/v1/state", {"format": "geojson"}),
                ("/v1/disputes", {}),
                *((f"/v1/places/{p}", {}) for p in places),
            ):
                params = {"valid_at": valid_at, "known_at": known, **extra}
                response = await client.get(path, params=params)
                assert response.status_code == 200, response.text
                answers[f"{path} {params}"] = response.content
        for path in (
            *(f"/v1/places/{p}/timeline" for p in places),
            *(f"/v1/places/{p}/events" for p in places),
        ):
            response = await client.get(path, params={"known_at": known})
            assert response.status_code == 200, response.text
            answers[f"{path} {known}"] = response.content
        response = await client.get(
            "/v1/state/changes",
            params={"from": "2017-05-01", "to": "2017-06-05", "known_at": known},
        )
        answers[f"changes {known}"] = response.content
    return answers


async def _segments(owner: asyncpg.Connection) -> list[tuple[Any, ...]]:
    rows = await owner.fetch(
        "SELECT place_id, valid_from, valid_to, known_from, known_to, controller, status,"
        " status_by, disputed, confidence, basis, body FROM segments"
        " ORDER BY place_id, known_from, valid_from"
    )
    return [tuple(row) for row in rows]


async def test_rebuild_reproduces_every_answer_byte_for_byte(
    client: Client, owner: asyncpg.Connection
) -> None:
    """POST /v1/admin/rebuild recomputes the projection from the log: it reports the rows it
    wrote and the head position, and every answer (state, GeoJSON, disputes, places,
    timelines, events, changes), as known now and at every past position, is the same bytes,
    as are the stored rows."""
    capture = event_json()
    stamps = []
    steps = [
        [capture, event_json(place=RAQQA, side="isis", type="control", opponent=None)],
        [isis_capture(occurred=WEEK_OF_JUNE_1)],
        [statement("denies", capture["id"], source=REUTERS), event_json(place=N4, occurred=DAY_1)],
        [
            event_json(place=DARAA, type="control", opponent=None, occurred=MAY_1),
            event_json(place=DARAA, type="encirclement", side="hts", opponent=GOV, occurred=DAY_2),
            event_json(place=DARAA, type="clash", side="hts", opponent=GOV, occurred=DAY_3),
        ],
        [statement("retracts", capture["id"])],
        [event_json(place=DARAA, type="casualties", casualties={"killed": 3}, occurred=DAY_3)],
    ]
    for step in steps:
        receipts = await post(client, *step)
        stamps.append(receipts[0]["recorded_at"])
    head = receipts[-1]["position"]
    before = await _answers(client, head, stamps)
    rows_before = await _segments(owner)
    assert any(row[4] is not None for row in rows_before)  # some rows were replaced: a past

    response = await client.post("/v1/admin/rebuild")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result == {
        "rows": len(rows_before),
        "position": head,
        "policy": "credibility-v2",
        "policy_version": 1,
    }
    assert await _segments(owner) == rows_before
    after = await _answers(client, head, stamps)
    assert after.keys() == before.keys()
    differing = [key for key in before if before[key] != after[key]]
    assert differing == []
    # And the log goes on: the next append is projected on top of the rebuilt rows.
    await post(client, isis_capture(place=RAQQA, side=GOV, opponent="isis", occurred=DAY_5))
    assert by_id(await state(client, valid_at="2017-06-05"))["sy-raqqa"]["controller"] == GOV


async def test_rebuild_of_an_empty_log(client: Client) -> None:
    """A rebuild with nothing in the log writes no row and stays at position 0."""
    response = await client.post("/v1/admin/rebuild")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "rows": 0,
        "position": 0,
        "policy": "credibility-v2",
        "policy_version": 1,
    }
    assert (await state(client, valid_at="2017-06-05"))["items"] == []


# --------------------------------------------------------------------------------------------
# Errors


async def test_unknown_place_is_a_404_naming_place_id(client: Client) -> None:
    """A place no event names is a 404 problem whose ``field`` is ``place_id``, on the place,
    its timeline and its events."""
    await post(client, event_json())
    for suffix in ("", "/timeline", "/events"):
        body = assert_problem(await client.get(f"/v1/places/x{suffix}"), 404, "place_id")
        assert "'x'" in body["detail"]


BAD_PARAMETERS: Final = [
    ("/v1/state", {"valid_at": "2017-13-01"}, "valid_at"),
    ("/v1/state", {"valid_at": "June 3rd"}, "valid_at"),
    ("/v1/state", {"valid_at": "2017-06-03T10:00:00"}, "valid_at"),  # no offset
    ("/v1/state", {"known_at": "position:x"}, "known_at"),
    ("/v1/state", {"known_at": "position:"}, "known_at"),
    ("/v1/state", {"known_at": "position:-1"}, "known_at"),
    ("/v1/state", {"known_at": "yesterday"}, "known_at"),
    ("/v1/state", {"bbox": "1,2,3"}, "bbox"),
    ("/v1/state", {"bbox": "1,2,3,4,5"}, "bbox"),
    ("/v1/state", {"bbox": "40,30,38,36"}, "bbox"),  # west > east
    ("/v1/state", {"bbox": "38,30,40,95"}, "bbox"),  # north beyond the pole
    ("/v1/state", {"bbox": "38,36,40,30"}, "bbox"),  # south > north
    ("/v1/state", {"bbox": "-181,0,0,1"}, "bbox"),
    ("/v1/state", {"bbox": "a,b,c,d"}, "bbox"),
    ("/v1/state", {"bbox": "nan,0,1,1"}, "bbox"),
    ("/v1/state", {"status": "bogus"}, "status"),
    ("/v1/state", {"disputed": "maybe"}, "disputed"),
    ("/v1/state", {"limit": "many"}, "limit"),
    ("/v1/disputes", {"valid_at": "2017-06-31"}, "valid_at"),
    ("/v1/disputes", {"known_at": "position:x"}, "known_at"),
    ("/v1/places/sy-maskanah", {"valid_at": "tomorrow"}, "valid_at"),
    ("/v1/places/sy-maskanah", {"known_at": "yesterday"}, "known_at"),
    ("/v1/places/sy-maskanah/timeline", {"known_at": "position:x"}, "known_at"),
    ("/v1/places/sy-maskanah/events", {"known_at": "yesterday"}, "known_at"),
    ("/v1/state/changes", {"from": "2017-06-01", "to": "later"}, "to"),
    ("/v1/state/changes", {"from": "06/01/2017", "to": "2017-06-05"}, "from"),
    ("/v1/state/changes", {"from": "2017-06-01", "to": ""}, "to"),
    ("/v1/state/changes", {"from": "2017-06-01", "to": "2017-06-05", "known_at": "x"}, "known_at"),
]


async def test_malformed_parameters_are_a_422_naming_the_parameter(client: Client) -> None:
    """A malformed query parameter (valid_at, known_at, bbox, status, disputed, limit, from,
    to) is a 422 problem whose ``field`` names it."""
    await post(client, event_json())
    for path, params, field in BAD_PARAMETERS:
        response = await client.get(path, params=params)
        assert response.status_code == 422, (path, params, response.text)
        assert_problem(response, 422, field)


async def test_a_missing_from_or_to_is_a_422_naming_it(client: Client) -> None:
    """/v1/state/changes without ``from`` or ``to`` is a 422 problem whose ``field`` names the
    missing parameter (the documented 422 of the endpoint: "`field` names it")."""
    for params, field in (({"to": "2017-06-05"}, "from"), ({"from": "2017-06-01"}, "to")):
        assert_problem(await client.get("/v1/state/changes", params=params), 422, field)


async def test_an_unknown_format_is_a_422_naming_format(client: Client) -> None:
    """``format=xml`` is a 422 whose ``field`` is the parameter the client sent, ``format``
    (not the handler's Python name ``format_``)."""
    assert_problem(await client.get("/v1/state", params={"format": "xml"}), 422, "format")


@pytest.mark.parametrize("number", ["²", "99999999999999999999"])
async def test_known_at_position_never_fails_with_a_500(client: Client, number: str) -> None:
    """``known_at=position:N`` with an N that ``int`` cannot read (a superscript digit passes
    ``str.isdigit``) or beyond bigint is a 422 naming ``known_at``, or (for a huge N) the
    latest commit; never an internal error."""
    await post(client, event_json())
    response = await client.get(
        "/v1/state", params={"valid_at": "2017-06-05", "known_at": f"position:{number}"}
    )
    if response.status_code == 200:
        assert response.json()["frame"]["known_position"] == 1
    else:
        assert_problem(response, 422, "known_at")


async def test_valid_at_out_of_range_is_a_422(client: Client) -> None:
    """A ``valid_at`` whose UTC instant falls outside the representable years (year 9999 at
    -05:00, year 1 at +01:00) is a 422 naming ``valid_at``, not an internal error."""
    await post(client, event_json())
    for valid_at in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"):
        for path in ("/v1/state", f"/v1/places/{MASKANAH}", "/v1/disputes"):
            response = await client.get(path, params={"valid_at": valid_at})
            assert_problem(response, 422, "valid_at")


async def test_a_nul_in_an_events_notes_leaves_every_format_of_the_state_readable(
    client: Client,
) -> None:
    """Free text (quote, notes) may hold "\\u0000", which PostgreSQL's jsonb refuses in a whole
    document: the CSV front (names, points, sources read from the payloads) answers as JSON and
    GeoJSON do. (schemathesis found a 500 here when the reads cast payloads to jsonb.)"""
    await post(client, event_json(notes="before\u0000after", quote="a\u0000b"))
    for fmt in ("csv", "geojson", "json"):
        response = await client.get("/v1/state", params={"valid_at": "2017-06-05", "format": fmt})
        assert response.status_code == 200, (fmt, response.text)
        assert "sy-maskanah" in response.text, fmt
    csv_lines = (await client.get("/v1/state", params={"format": "csv"})).text.splitlines()
    assert len(csv_lines) == 2
    assert "Maskanah" in csv_lines[1]
