"""GET /v1/state/changes over HTTP: every change inside a valid range, not the difference
between its ends, as known at a position, page by page, narrowed by place, side and box.

Events go in through ``POST /v1/events`` and the answers come from the real app on the real
database (``read_state_changes.sql``); ``service.domain.history.transitions`` over each
place's timeline says what the answer must be.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient

from contracts.timeline import Segment
from service.domain.history import changed_fields, transitions
from tests.api.conftest import assert_problem
from tests.api.test_front import DARAA, GOV, MASKANAH, RAQQA, REUTERS, by_id, post, state
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]

ZKUF: Final[dict[str, Any]] = {
    "id": "sy-al-zkuf",
    "name": "al-Zkuf",
    "kind": "base",
    "lat": 34.47,
    "lon": 38.77,
}
COALITION: Final = "us-coalition"
JUNE: Final = {"from": "2017-06-01", "to": "2017-06-06"}
#: Around Daraa only.
DARAA_BOX: Final = "35.9,32.5,36.3,32.8"


def day(text: str) -> dict[str, str]:
    """A day-precise ``occurred``."""
    return {"start": text, "precision": "day"}


def report(place: dict[str, Any], kind: str, side: str, when: str, **more: Any) -> dict[str, Any]:
    """A Reuters report (B, neutral) about ``place``."""
    fields: dict[str, Any] = {"opponent": None, "actor": None, "source": REUTERS}
    return event_json(place=place, type=kind, side=side, occurred=day(when), **{**fields, **more})


async def get(client: Client, path: str, **params: str | int) -> dict[str, Any]:
    """GET a 200 answer's JSON."""
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def changes(client: Client, **params: str | int) -> dict[str, Any]:
    """GET /v1/state/changes, which must answer 200."""
    response = await client.get("/v1/state/changes", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def summary(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each change as (place, at, controller and status before, after, what changed)."""

    def reading(segment: dict[str, Any] | None) -> tuple[Any, ...] | None:
        if segment is None:
            return None
        return (segment["controller"], segment["status"], segment["status_by"])

    return [
        (i["place"]["id"], i["at"][:10], reading(i["before"]), reading(i["after"]), i["changed"])
        for i in items
    ]


async def post_june(client: Client) -> int:
    """A base set up on 06-02 and evacuated on 06-04 at al-Zkuf (the government's before and
    after), a one-day clash at Daraa on 06-03 (the government's throughout), Raqqa ISIS's
    since May, in one commit; Maskanah captured on 06-03 in a second. The first commit's
    position."""
    receipts = await post(
        client,
        report(ZKUF, "control", GOV, "2017-05-01"),
        report(ZKUF, "base_established", COALITION, "2017-06-02"),
        report(ZKUF, "base_evacuated", COALITION, "2017-06-04", opponent=GOV),
        report(DARAA, "control", GOV, "2017-05-01"),
        report(DARAA, "clash", "hts", "2017-06-03", opponent=GOV),
        report(RAQQA, "control", "isis", "2017-05-01"),
    )
    await post(client, event_json())
    first: int = receipts[-1]["commit_position"]
    return first


EXPECTED_JUNE: Final = [
    ("sy-al-zkuf", "2017-06-02", (GOV, "controlled", None), (COALITION, "controlled", None),
     ["controller"]),
    ("sy-al-zkuf", "2017-06-04", (COALITION, "controlled", None), (GOV, "controlled", None),
     ["controller"]),
    ("sy-daraa", "2017-06-03", (GOV, "controlled", None), (GOV, "contested", "hts"),
     ["status", "status_by"]),
    ("sy-daraa", "2017-06-04", (GOV, "contested", "hts"), (GOV, "controlled", None),
     ["status", "status_by"]),
    (MASKANAH, "2017-06-03", None, (GOV, "controlled", None),
     ["controller", "status", "status_by", "disputed"]),
]  # fmt: skip


async def test_a_base_set_up_and_evacuated_and_a_one_day_contest_are_listed(
    client: Client,
) -> None:
    """Inside 06-01..06-06, al-Zkuf's base (set up 06-02, evacuated 06-04) and Daraa's one-day
    clash (06-03) are each two changes, though each place reads the same at both ends (the
    difference between the ends, the old answer, had neither); Maskanah's first report is a
    change from no segment; Raqqa, unchanged, is absent. In (place, valid time) order, each
    with the segments on either side, which are the timeline's own."""
    first_commit = await post_june(client)
    answer = await changes(client, **JUNE)
    assert summary(answer["items"]) == EXPECTED_JUNE
    assert answer["next_cursor"] is None
    assert answer["frame"] == {
        "policy": "credibility-v2",
        "policy_version": 1,
        "valid_at": None,
        "known_position": first_commit + 1,
    }
    assert (answer["from"], answer["to"]) == ("2017-06-01T00:00:00Z", "2017-06-06T00:00:00Z")
    assert answer["items"][0]["place"] == {
        **ZKUF,
        "parent": None,
        "aliases": [],
        "precision": None,
    }
    for place in ("sy-al-zkuf", "sy-daraa"):
        ends = [by_id(await state(client, valid_at=v))[place] for v in (JUNE["from"], JUNE["to"])]
        assert [(s["controller"], s["status"]) for s in ends] == [(GOV, "controlled")] * 2
    for item in answer["items"]:
        assert item["at"] == item["after"]["valid_from"]
        assert "held_since" in item["after"]
        timeline = (await get(client, f"/v1/places/{item['place']['id']}/timeline"))["segments"]
        assert item["after"] in timeline
        if item["before"] is not None:
            assert item["before"] in timeline
            assert item["before"]["valid_to"] == item["at"]


async def test_the_range_includes_both_ends(client: Client) -> None:
    """``from`` and ``to`` are both in the range: a change exactly at either is listed, and
    ``from == to`` lists the changes at that instant; one microsecond after a change leaves it
    out."""
    await post_june(client)
    at_two = await changes(client, **{"from": "2017-06-02", "to": "2017-06-02"})
    assert [(i["place"]["id"], i["at"]) for i in at_two["items"]] == [
        ("sy-al-zkuf", "2017-06-02T00:00:00Z")
    ]
    ends = await changes(client, **{"from": "2017-06-02", "to": "2017-06-04"})
    assert summary(ends["items"]) == EXPECTED_JUNE
    later = await changes(client, **{"from": "2017-06-02T00:00:00.000001Z", "to": "2017-06-03"})
    assert [(i["place"]["id"], i["at"][:10]) for i in later["items"]] == [
        ("sy-daraa", "2017-06-03"),
        (MASKANAH, "2017-06-03"),
    ]
    # An offset is converted to UTC: 06-04 02:00 at +03:00 is 06-03 23:00 UTC.
    offset = await changes(client, **{"from": "2017-06-04T02:00:00+03:00", "to": "2017-06-04"})
    assert [(i["place"]["id"], i["at"][:10]) for i in offset["items"]] == [
        ("sy-al-zkuf", "2017-06-04"),
        ("sy-daraa", "2017-06-04"),
    ]
    assert offset["from"] == "2017-06-03T23:00:00Z"


async def test_pages_follow_the_cursor_even_inside_one_place(client: Client) -> None:
    """With ``limit=1`` the five changes come one page at a time; a page can end between two
    changes of one place (al-Zkuf) and the next continues after it; the pages together are the
    one-page answer, and the last page has no ``next_cursor``."""
    await post_june(client)
    whole = (await changes(client, **JUNE))["items"]
    pages: list[dict[str, Any]] = []
    cursors: list[str] = []
    cursor = ""
    while True:
        page = await changes(client, **JUNE, limit=1, cursor=cursor)
        pages.extend(page["items"])
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
        cursors.append(cursor)
    assert pages == whole
    assert cursors[:2] == [
        "sy-al-zkuf@2017-06-02T00:00:00.000000Z",
        "sy-al-zkuf@2017-06-04T00:00:00.000000Z",
    ]
    assert len(cursors) == 4
    two = await changes(client, **JUNE, limit=2, cursor=cursors[0])
    assert summary(two["items"]) == EXPECTED_JUNE[1:3]
    assert two["next_cursor"] == "sy-daraa@2017-06-03T00:00:00.000000Z"


async def test_changes_as_known_at_a_past_position(client: Client) -> None:
    """``known_at`` gives the changes as the database knew them then: before Maskanah's report
    it has no change; before anything, no change at all."""
    first_commit = await post_june(client)
    then = await changes(client, **JUNE, known_at=f"position:{first_commit}")
    assert then["frame"]["known_position"] == first_commit
    assert summary(then["items"]) == EXPECTED_JUNE[:4]
    nothing = await changes(client, **JUNE, known_at="position:0")
    assert (nothing["items"], nothing["frame"]["known_position"]) == ([], 0)


async def test_place_side_and_bbox_narrow_the_changes(client: Client) -> None:
    """``place`` keeps one place's changes, ``side`` those where the side holds, encircles or
    contests the place before or after, ``bbox`` those of places whose point is in the box;
    they combine with each other and with the cursor."""
    await post_june(client)
    daraa = EXPECTED_JUNE[2:4]
    assert summary((await changes(client, **JUNE, place="sy-daraa"))["items"]) == daraa
    assert summary((await changes(client, **JUNE, side="hts"))["items"]) == daraa
    assert summary((await changes(client, **JUNE, bbox=DARAA_BOX))["items"]) == daraa
    coalition = await changes(client, **JUNE, side=COALITION)
    assert summary(coalition["items"]) == EXPECTED_JUNE[:2]
    government = await changes(client, **JUNE, side=GOV)
    assert summary(government["items"]) == EXPECTED_JUNE
    assert (await changes(client, **JUNE, side="isis"))["items"] == []
    assert (await changes(client, **JUNE, place="sy-nowhere"))["items"] == []
    both = await changes(client, **JUNE, place="sy-daraa", side=COALITION)
    assert both["items"] == []
    paged = await changes(client, **JUNE, place="sy-daraa", limit=1)
    assert summary(paged["items"]) == daraa[:1]
    rest = await changes(client, **JUNE, place="sy-daraa", cursor=paged["next_cursor"])
    assert (summary(rest["items"]), rest["next_cursor"]) == (daraa[1:], None)


# --------------------------------------------------------------------------------------------
# The answer is what the timelines say


SIDES: Final = (GOV, "isis", "sdf")
SOURCES: Final = (
    REUTERS,
    {"name": "South Front", "reliability": "C", "alignment": GOV},
    {"name": "Amaq", "reliability": "D", "alignment": "isis"},
)
KINDS: Final = (
    "capture", "control", "withdrawal", "base_established", "base_evacuated", "encirclement",
    "siege_lifted", "clash", "counter_attack", "strike",
)  # fmt: skip
PLACES: Final = ("sy-p-a", "sy-p-b", "sy-p-c", "sy-p-d")
_segment: Final = msgspec.json.Decoder(Segment)


def random_event(rng: random.Random) -> dict[str, Any]:
    """A report of a random kind about one of four places, on a day of June 2017 (some a week,
    some at an hour)."""
    side, opponent = rng.sample(SIDES, 2)
    start = datetime(2017, 6, 1, tzinfo=UTC) + timedelta(days=rng.randrange(20))
    precision = rng.choice(("day", "day", "day", "week", "hour"))
    if precision == "hour":
        start += timedelta(hours=rng.randrange(24))
    text = start.date().isoformat() if precision != "hour" else start.isoformat()
    place = rng.choice(PLACES)
    return event_json(
        place={"id": place, "name": place, "lat": 35.0, "lon": 38.0 + PLACES.index(place)},
        type=rng.choice(KINDS),
        side=side,
        opponent=rng.choice((opponent, None)),
        actor=None,
        occurred={"start": text, "precision": precision},
        source=rng.choice(SOURCES),
    )


def instant(rng: random.Random) -> datetime:
    """A random bound in late May to late June, sometimes exactly a day's start."""
    moment = datetime(2017, 5, 30, tzinfo=UTC) + timedelta(days=rng.randrange(25))
    if rng.random() < 0.5:
        moment += timedelta(hours=rng.randrange(24), microseconds=rng.choice((0, 1, 999_999)))
    return moment


async def test_every_answer_is_the_timelines_transitions(client: Client) -> None:
    """Over three commits of random reports about four places, for random ranges (open or
    closed on a change, as known at each commit) and pages of three, the answer is exactly
    ``transitions`` of each place's timeline as known then, in (place, valid time) order,
    with what changed."""
    rng = random.Random(20170603)
    commits = []
    for _ in range(3):
        receipts = await post(client, *(random_event(rng) for _ in range(14)))
        commits.append(receipts[-1]["commit_position"])
    checked = 0
    for _ in range(12):
        known = rng.choice(commits)
        start, end = sorted((instant(rng), instant(rng)))
        expected = []
        for place in PLACES:
            response = await client.get(
                f"/v1/places/{place}/timeline", params={"known_at": f"position:{known}"}
            )
            if response.status_code == 404:
                continue
            segments = [
                _segment.decode(msgspec.json.encode(s)) for s in response.json()["segments"]
            ]
            for boundary in transitions(segments, start, end):
                expected.append(
                    {
                        "at": boundary.at,
                        "place": place,
                        "changed": changed_fields(boundary.before, boundary.after),
                        "before": boundary.before,
                        "after": boundary.after,
                    }
                )
        found: list[dict[str, Any]] = []
        cursor = ""
        while True:
            page = await changes(
                client,
                **{"from": start.isoformat(), "to": end.isoformat()},
                known_at=f"position:{known}",
                limit=3,
                cursor=cursor,
            )
            assert len(page["items"]) <= 3
            found.extend(
                {
                    "at": datetime.fromisoformat(i["at"]),
                    "place": i["place"]["id"],
                    "changed": i["changed"],
                    "before": i["before"] and _segment.decode(msgspec.json.encode(i["before"])),
                    "after": _segment.decode(msgspec.json.encode(i["after"])),
                }
                for i in page["items"]
            )
            if page["next_cursor"] is None:
                break
            cursor = page["next_cursor"]
        assert found == expected, (start, end, known)
        checked += len(found)
    assert checked > 20  # the ranges did hold changes


# --------------------------------------------------------------------------------------------
# Bad input


BAD: Final = [
    ({"from": "2017-06-05", "to": "2017-06-01"}, "to"),  # to before from
    ({"from": "2017-06-01T10:00:00Z", "to": "2017-06-01T09:59:59.999999Z"}, "to"),
    ({**JUNE, "limit": "0"}, "limit"),
    ({**JUNE, "limit": "1001"}, "limit"),
    ({**JUNE, "limit": "-1"}, "limit"),
    ({**JUNE, "limit": "ten"}, "limit"),
    ({**JUNE, "cursor": "sy-daraa"}, "cursor"),
    ({**JUNE, "cursor": "sy-daraa@yesterday"}, "cursor"),
    ({**JUNE, "cursor": "sy-daraa@2017-02-30"}, "cursor"),
    ({**JUNE, "cursor": "sy-daraa@2017-06-03T10:00:00"}, "cursor"),  # no offset
    ({**JUNE, "cursor": "Sy-Daraa@2017-06-03"}, "cursor"),
    ({**JUNE, "cursor": "sy-daraa@2017-06-03\n"}, "cursor"),
    ({**JUNE, "place": "Sy Daraa"}, "place"),
    ({**JUNE, "place": "sy-\x00"}, "place"),
    ({**JUNE, "place": ""}, "place"),
    ({**JUNE, "side": "ISIS"}, "side"),
    ({**JUNE, "side": ""}, "side"),
    ({**JUNE, "bbox": "36,33,35,32"}, "bbox"),
    ({**JUNE, "bbox": "1,2,3"}, "bbox"),
    ({**JUNE, "known_at": "position:-1"}, "known_at"),
    ({**JUNE, "known_at": "yesterday"}, "known_at"),
]


async def test_bad_parameters_are_a_422_problem_naming_the_field(client: Client) -> None:
    """Each malformed parameter of /v1/state/changes (``to`` before ``from``, a limit out of
    1..FRONTLINE_MAX_PAGE, a cursor that is not ``place@instant``, a place or side that is not
    an id, a bad box or known_at, a missing bound) is a 422 RFC 9457 problem whose ``field``
    names it, and nothing else answers (no 500)."""
    await post_june(client)
    for params, field in BAD:
        response = await client.get("/v1/state/changes", params=params)
        assert_problem(response, 422, field)
