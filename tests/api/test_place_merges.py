"""Merges of places over HTTP (DESIGN section 8, issue 14): "ar-raqqah is sy-raqqa".

After a merge the merged place's events (earlier and later ones) belong to the surviving
place's timeline, folded again in the merge's commit; as known before the merge there were
two places; an unmerge (an editor's retraction of the merge) makes them two again from its
position on. Every answer as known at any position equals a fold of the events of that
position through the merges of that position; a rebuild gives the rows the appends gave,
and verify finds them right. Bad merges are problems naming the field, and write nothing.
"""

from __future__ import annotations

from typing import Any, Final

import asyncpg
import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient

from contracts.events import event_decoder, registry_decoder
from service.domain.policy import SERVED
from service.domain.projection import Fact, PlaceFold
from service.domain.registry import EMPTY, RegistryRow, registry_after
from service.store.keys import KeyStore
from tests.api.conftest import assert_problem, stored_count
from tests.payloads import at_place

Client = AsyncTestClient[Litestar]

RAQQA: Final = "sy-raqqa"
AR_RAQQAH: Final = "ar-raqqah"
TABQA: Final = "sy-tabqa"
REUTERS: Final = {"name": "Reuters", "reliability": "B", "alignment": "neutral"}
SOHR: Final = {"name": "SOHR", "reliability": "B", "alignment": "neutral"}
AMAQ: Final = {"name": "Amaq", "reliability": "D", "alignment": "isis"}
DAY_1: Final = {"start": "2017-06-01", "precision": "day"}
DAY_3: Final = {"start": "2017-06-03", "precision": "day"}
DAY_5: Final = {"start": "2017-06-05", "precision": "day"}
DAY_7: Final = {"start": "2017-06-07", "precision": "day"}
ROWS: Final = (
    "SELECT place_id, valid_from, valid_to, known_from, known_to, controller, status,"
    " status_by, disputed, confidence, basis, body FROM segments"
    " ORDER BY place_id, known_from, valid_from"
)


async def post(client: Client, *events: dict[str, Any]) -> int:
    """Append events as one commit; its commit position."""
    body: dict[str, Any] = events[0] if len(events) == 1 else {"events": list(events)}
    response = await client.post("/v1/events", json=body)
    assert response.status_code == 201, response.text
    position: int = response.json()["receipts"][0]["commit_position"]
    return position


async def merge(client: Client, place: str, merged: str, **more: Any) -> dict[str, Any]:
    """POST a merge (201 expected); its receipt."""
    response = await client.post(f"/v1/places/{place}/merges", json={"merged": merged, **more})
    assert response.status_code == 201, response.text
    receipt: dict[str, Any] = response.json()["receipts"][0]
    return receipt


async def unmerge(client: Client, place: str, merged: str, **more: Any) -> dict[str, Any]:
    """POST an unmerge (201 expected); its receipt."""
    response = await client.post(f"/v1/places/{place}/unmerges", json={"merged": merged, **more})
    assert response.status_code == 201, response.text
    receipt: dict[str, Any] = response.json()["receipts"][0]
    return receipt


async def timeline(client: Client, place: str, position: int | None = None) -> list[Any]:
    """A place's segments, as known at ``position`` (default: now)."""
    params = {} if position is None else {"known_at": f"position:{position}"}
    response = await client.get(f"/v1/places/{place}/timeline", params=params)
    assert response.status_code == 200, response.text
    segments: list[Any] = response.json()["segments"]
    return segments


def two_spellings() -> list[dict[str, Any]]:
    """Raqqa as two datasets spell it: the government holds sy-raqqa from day 1 (Reuters);
    IS captures "Ar Raqqah" 30 m away on day 3 (Amaq), and SOHR reports a clash there on
    day 5."""
    return [
        at_place(RAQQA, type="control", opponent=None, source=REUTERS, occurred=DAY_1),
        at_place(AR_RAQQAH, side="isis", opponent="syrian-government", source=AMAQ, occurred=DAY_3),
        at_place(AR_RAQQAH, type="clash", source=SOHR, occurred=DAY_5),
    ]


async def expected_timelines(owner: asyncpg.Connection, position: int) -> dict[str, Any]:
    """Every place's segments as known at ``position``, folded from scratch: the events up
    to it, each counted for the place its stream is merged into as the registry of that
    position says (the oracle the rows are held to)."""
    rows = await owner.fetch(
        "SELECT place_id, position, commit_position, place_version, submitter, payload"
        " FROM events WHERE position <= $1 ORDER BY position",
        position,
    )
    registry = registry_after(
        EMPTY,
        [
            RegistryRow(
                r["position"],
                r["commit_position"],
                r["place_version"],
                r["submitter"],
                registry_decoder.decode(r["payload"]),
            )
            for r in rows
            if ":" in r["place_id"]
        ],
    )
    facts: dict[str, list[Fact]] = {}
    for r in rows:
        if ":" not in r["place_id"]:
            facts.setdefault(r["place_id"], [])
            fact = Fact.of(event_decoder.decode(r["payload"]))
            facts.setdefault(registry.place_of(r["place_id"]), []).append(fact)
    answer: dict[str, Any] = {}
    for place, found in facts.items():
        fold = PlaceFold(SERVED)
        fold.add([registry.canonical_fact(f) for f in found])
        answer[place] = msgspec.json.decode(msgspec.json.encode(fold.timeline().segments))
    return answer


async def test_a_merge_joins_the_timelines_and_as_known_before_there_were_two(
    client: Client,
) -> None:
    """Before the merge Ar Raqqah has IS's capture and sy-raqqa is the government's; after
    it sy-raqqa's timeline holds both places' claims (the government's hold until IS's
    capture, then the clash), Ar Raqqah has no segment and says where it went; as known
    before the merge both answers are as they were. A report sent to ar-raqqah after the
    merge goes to sy-raqqa's timeline; GET /v1/places/merges lists the merge as known at
    each position."""
    before = await post(client, *two_spellings())
    raqqa_before = await timeline(client, RAQQA)
    ar_before = await timeline(client, AR_RAQQAH)
    assert ar_before
    assert raqqa_before
    assert {s["controller"] for s in ar_before} >= {"isis"}
    assert "isis" not in {s["controller"] for s in raqqa_before}

    receipt = await merge(client, RAQQA, AR_RAQQAH, notes="30 m apart: one city")
    assert receipt["place"] == f"place:{AR_RAQQAH}"
    assert receipt["place_version"] == 1
    joined = await timeline(client, RAQQA)
    assert [(s["valid_from"][:10], s["controller"], s["status"]) for s in joined] == [
        ("2017-06-01", "syrian-government", "controlled"),  # sy-raqqa's own report
        ("2017-06-03", "isis", "controlled"),  # Ar Raqqah's capture, now Raqqa's
        ("2017-06-05", "isis", "contested"),  # and its clash
        ("2017-06-06", "isis", "controlled"),
    ]
    assert joined != raqqa_before
    assert await timeline(client, AR_RAQQAH) == []
    detail = (await client.get(f"/v1/places/{AR_RAQQAH}")).json()
    assert (detail["merged_into"], detail["segment"]) == (RAQQA, None)
    assert (await client.get(f"/v1/places/{RAQQA}")).json()["merged"] == [AR_RAQQAH]

    assert await timeline(client, RAQQA, before) == raqqa_before
    assert await timeline(client, AR_RAQQAH, before) == ar_before
    then = await client.get(f"/v1/places/{AR_RAQQAH}", params={"known_at": f"position:{before}"})
    assert then.json()["merged_into"] is None

    later = await post(client, at_place(AR_RAQQAH, type="control", source=SOHR, occurred=DAY_7))
    assert await timeline(client, AR_RAQQAH) == []
    assert (await timeline(client, RAQQA))[-1]["valid_from"].startswith("2017-06-07")
    merges = (await client.get("/v1/places/merges")).json()
    assert merges["known_position"] == later
    assert [(m["place"], m["merged"], m["submitter"]) for m in merges["merges"]] == [
        (RAQQA, AR_RAQQAH, "test-admin")
    ]
    old = await client.get("/v1/places/merges", params={"known_at": f"position:{before}"})
    assert old.json()["merges"] == []


async def test_merges_and_unmerges_are_exact_at_every_known_position(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Reports, a merge, reports to both spellings, an unmerge, a report, a merge again,
    and a merge committed with a report in one group: at every commit position, every
    place's timeline as known then is the fold of the events known then through the merges
    known then."""
    commits = [await post(client, *two_spellings())]
    commits.append(await post(client, at_place(TABQA, type="control", occurred=DAY_1)))
    commits.append((await merge(client, RAQQA, AR_RAQQAH))["commit_position"])
    commits.append(
        await post(
            client,
            at_place(AR_RAQQAH, type="control", source=SOHR, occurred=DAY_7),
            at_place(RAQQA, type="clash", side="isis", source=AMAQ, occurred=DAY_5),
        )
    )
    commits.append((await unmerge(client, RAQQA, AR_RAQQAH))["commit_position"])
    commits.append(await post(client, at_place(AR_RAQQAH, type="control", occurred=DAY_7)))
    commits.append((await merge(client, TABQA, AR_RAQQAH))["commit_position"])
    commits.append((await merge(client, TABQA, RAQQA))["commit_position"])
    for position in commits:
        expected = await expected_timelines(owner, position)
        for place in (RAQQA, AR_RAQQAH, TABQA):
            got = await timeline(client, place, position)
            assert got == expected.get(place, []), (place, position)
    assert await timeline(client, RAQQA) == []
    assert await timeline(client, AR_RAQQAH) == []
    assert await timeline(client, TABQA)


async def test_a_rebuild_equals_the_incremental_rows_after_merges_and_verify_holds(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Merges, reports to merged places, an unmerge and a merge again: the rows the appends
    wrote (known ranges included) are those a rebuild writes, and a full verify of the
    projections finds no difference."""
    await post(client, *two_spellings())
    await merge(client, RAQQA, AR_RAQQAH)
    await post(client, at_place(AR_RAQQAH, type="control", source=SOHR, occurred=DAY_7))
    await unmerge(client, RAQQA, AR_RAQQAH)
    await post(client, at_place(TABQA, type="control", occurred=DAY_1))
    await merge(client, TABQA, AR_RAQQAH)
    rows = [tuple(r) for r in await owner.fetch(ROWS)]
    assert any(r[4] is not None for r in rows)
    verify = (await client.get("/v1/audit/verify", params={"projections": "full"})).json()
    assert verify["projections"]["ok"] is True, verify["projections"]
    response = await client.post("/v1/admin/rebuild")
    assert response.status_code == 200, response.text
    assert [tuple(r) for r in await owner.fetch(ROWS)] == rows
    sampled = (await client.get("/v1/audit/verify")).json()
    assert sampled["ok"] is True, (sampled["projections"], sampled["links"], sampled["failure"])


async def test_a_merge_refolds_only_the_two_places_in_its_commit(
    client: Client, owner: asyncpg.Connection
) -> None:
    """The merge's commit changes the rows of the two places it joins, and no other
    place's."""
    await post(client, *two_spellings(), at_place(TABQA, type="control", occurred=DAY_1))
    position = (await merge(client, RAQQA, AR_RAQQAH))["commit_position"]
    changed = await owner.fetch(
        "SELECT DISTINCT place_id FROM segments WHERE known_from = $1 OR known_to = $1"
        " ORDER BY place_id",
        position,
    )
    assert [r["place_id"] for r in changed] == [AR_RAQQAH, RAQQA]


async def test_bad_merges_are_problems_naming_the_field_and_write_nothing(
    client: Client, owner: asyncpg.Connection
) -> None:
    """An unknown place (the path's or the body's), a place merged into itself, a place
    merged twice, a merge into a merged place or of a place others are merged into (no
    chains, no cycles), an unmerge of no merge or naming another merge, an unknown field, a
    body that is not JSON: a 4xx problem naming the field; nothing is written."""
    await post(client, *two_spellings(), at_place(TABQA, type="control", occurred=DAY_1))
    await merge(client, RAQQA, AR_RAQQAH)
    stored = await stored_count(owner)
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("/v1/places/nowhere/merges", {"merged": TABQA}, 422, "place"),
        (f"/v1/places/{TABQA}/merges", {"merged": "nowhere"}, 422, "merged"),
        (f"/v1/places/{TABQA}/merges", {"merged": TABQA}, 422, "merged"),
        (f"/v1/places/{TABQA}/merges", {"merged": AR_RAQQAH}, 409, "merged"),
        (f"/v1/places/{AR_RAQQAH}/merges", {"merged": TABQA}, 409, "place"),
        (f"/v1/places/{TABQA}/merges", {"merged": RAQQA}, 409, "merged"),
        (f"/v1/places/{RAQQA}/merges", {"merged": RAQQA}, 422, "merged"),
        (f"/v1/places/{AR_RAQQAH}/merges", {"merged": RAQQA}, 409, "place"),
        (f"/v1/places/{TABQA}/merges", {"merged": "Bad Id"}, 422, "merged"),
        (f"/v1/places/{TABQA}/merges", {"merged": RAQQA, "position": 3}, 422, "position"),
        (f"/v1/places/{TABQA}/unmerges", {"merged": AR_RAQQAH}, 409, "merged"),
        (
            f"/v1/places/{RAQQA}/unmerges",
            {"merged": AR_RAQQAH, "retracts": "00000000-0000-4000-8000-000000000000"},
            409,
            "retracts",
        ),
    ]
    for url, body, status, field in cases:
        assert_problem(await client.post(url, json=body), status, field)
    not_json = await client.post(f"/v1/places/{TABQA}/merges", content=b"{nope")
    assert_problem(not_json, 400)
    assert await stored_count(owner) == stored


async def test_expect_guards_a_merged_places_stream(client: Client) -> None:
    """``expect`` on ``place:<merged>``: ``none`` merges a place never merged, a stale
    version is a 409 naming ``expect``; the unmerge expecting version 1 goes through."""
    await post(client, *two_spellings())
    await merge(client, RAQQA, AR_RAQQAH, expect="none")
    await unmerge(client, RAQQA, AR_RAQQAH, expect=1)
    again = await client.post(
        f"/v1/places/{RAQQA}/merges", json={"merged": AR_RAQQAH, "expect": "none"}
    )
    assert assert_problem(again, 409, "expect")["actual"] == 2


async def test_merges_need_an_editor_or_admin_key(client: Client, owner_pool: asyncpg.Pool) -> None:
    """An ingest key may neither merge nor unmerge (403); an editor key may, and its name
    is the merge's submitter; the merge is an event of the log, in the merged place's
    registry stream."""
    await post(client, *two_spellings())
    keys = KeyStore(owner_pool)
    _, ingest = await keys.create("ingest-key", "ingest")
    _, editor = await keys.create("editor-key", "editor")
    url = f"/v1/places/{RAQQA}/merges"
    refused = await client.post(
        url, json={"merged": AR_RAQQAH}, headers={"authorization": f"Bearer {ingest}"}
    )
    assert_problem(refused, 403)
    done = await client.post(
        url, json={"merged": AR_RAQQAH}, headers={"authorization": f"Bearer {editor}"}
    )
    assert done.status_code == 201, done.text
    undo = await client.post(
        f"/v1/places/{RAQQA}/unmerges",
        json={"merged": AR_RAQQAH},
        headers={"authorization": f"Bearer {ingest}"},
    )
    assert_problem(undo, 403)
    merges = (await client.get("/v1/places/merges")).json()["merges"]
    assert merges[0]["submitter"] == "editor-key"
    events = (await client.get("/v1/events", params={"type": "place_merged"})).json()["events"]
    assert [e["place"] for e in events] == [f"place:{AR_RAQQAH}"]


async def test_verify_holds_over_every_kind_of_registry_event(client: Client) -> None:
    """A side, a source, a merge and an unmerge in the log: verify checks each registry
    event's columns against its payload and finds the chain whole (it once read every row
    as an event about a place, and failed on the first registry event)."""
    await post(client, *two_spellings())
    side = {"side": "isis", "name": "Islamic State", "aliases": ["is"]}
    assert (await client.post("/v1/sides", json=side)).status_code == 201
    source = {"source": "Amaq", "reliability": "D", "alignment": "isis"}
    assert (await client.post("/v1/sources", json=source)).status_code == 201
    await merge(client, RAQQA, AR_RAQQAH)
    await unmerge(client, RAQQA, AR_RAQQAH)
    report = (await client.get("/v1/audit/verify", params={"projections": "full"})).json()
    assert (report["ok"], report["failure"], report["checked"]) == (True, None, 7), report


async def test_the_place_answers_of_a_merged_place_stay_well_formed(client: Client) -> None:
    """After a merge, the surviving and the merged place's events, history and the front
    answer 200 (the merged place is no longer on the front as known now: it has no
    segment), and the front as known before the merge lists both."""
    before = await post(client, *two_spellings())
    await merge(client, RAQQA, AR_RAQQAH)
    for place in (RAQQA, AR_RAQQAH):
        for tail in ("events", "history", "casualties"):
            answer = await client.get(f"/v1/places/{place}/{tail}")
            assert answer.status_code == 200, (place, tail, answer.text)
    now = (await client.get("/v1/state", params={"valid_at": "2017-06-04"})).json()
    assert [item["place"]["id"] for item in now["items"]] == [RAQQA]
    then = await client.get(
        "/v1/state", params={"valid_at": "2017-06-04", "known_at": f"position:{before}"}
    )
    assert sorted(item["place"]["id"] for item in then.json()["items"]) == [AR_RAQQAH, RAQQA]
