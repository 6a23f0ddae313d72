"""The store's contract against the real PostgreSQL (DESIGN 6): what any backend of the log
must do, driven through ``EventStore`` and ``GroupCommitter`` directly, checked behind the
store's back by reading the tables as the owner."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
import pytest

from contracts.events import event_decoder
from contracts.responses import Receipt
from service.domain.errors import IdConflict, InvalidEvent, NotTheSource, WrongExpectedVersion
from service.domain.records import source_key
from service.store.appender import GroupCommitter
from service.store.events import EventFilter, EventStore
from service.usecases.ingest import import_ndjson, split_lines
from tests.integration.helpers import (
    Conn,
    append_error,
    append_ok,
    check_chain,
    event_rows,
    log_state,
    prepared,
    request,
)
from tests.payloads import at_place, event_json

EVERYTHING = EventFilter()


def link(target: Receipt | uuid.UUID, relation: str) -> list[dict[str, str]]:
    """A ``relates_to`` of one link."""
    event = target.id if isinstance(target, Receipt) else target
    return [{"event": str(event), "relation": relation}]


def statement(target: Receipt | uuid.UUID, relation: str, source: str) -> dict[str, Any]:
    """A statement by ``source`` about an earlier event at the default place."""
    return event_json(
        type="statement", side=None, source={"name": source}, relates_to=link(target, relation)
    )


def at(place_id: str, place: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """An event about ``place_id`` (no point unless given), with place fields and changes."""
    fields = {"id": place_id, "name": place_id, "lat": None, "lon": None, **(place or {})}
    return event_json(place=fields, **changes)


async def positions(store: EventStore, where: EventFilter = EVERYTHING) -> list[int]:
    """The positions a page reader gets."""
    return [e.position for e in await store.page(0, 10_000, where)]


# --- positions, versions, the chain ----------------------------------------------------------


async def test_positions_are_dense_from_one(store: EventStore, owner: Conn) -> None:
    """Positions run 1, 2, 3, ... with no hole across single events and batches; a batch's
    events share one commit whose commit_position is its last position; the head row holds
    the last position."""
    receipts = [
        *await append_ok(store, event_json()),
        *await append_ok(store, event_json(), at_place("sy-khanasser"), event_json()),
        *await append_ok(store, at_place("sy-deir-ezzor")),
        *await append_ok(store, event_json(), event_json()),
    ]
    assert [r.position for r in receipts] == list(range(1, 8))
    assert [r.commit_position for r in receipts] == [1, 4, 4, 4, 5, 7, 7]
    assert all(not r.duplicate for r in receipts)
    assert [r["position"] for r in await event_rows(owner)] == list(range(1, 8))
    head_position, head_hash = await store.head()
    assert head_position == 7
    assert head_hash == bytes((await event_rows(owner))[-1]["hash"])


async def test_place_versions_count_each_place_from_one(store: EventStore, owner: Conn) -> None:
    """Each place's events carry versions 1..n in position order, whether they came alone,
    in one batch, or interleaved with other places."""
    a, b, c = "sy-a", "sy-b", "sy-c"
    receipts = [
        *await append_ok(store, at_place(a)),
        *await append_ok(store, at_place(b), at_place(a), at_place(a)),
        *await append_ok(store, at_place(c)),
        *await append_ok(store, at_place(b), at_place(a)),
    ]
    assert [(r.place, r.place_version) for r in receipts] == [
        (a, 1), (b, 1), (a, 2), (a, 3), (c, 1), (b, 2), (a, 4),
    ]  # fmt: skip
    stored = [(r["place_id"], r["place_version"]) for r in await event_rows(owner)]
    assert stored == [(r.place, r.place_version) for r in receipts]
    versions = await owner.fetch("SELECT id, version FROM places ORDER BY id")
    assert [(r["id"], r["version"]) for r in versions] == [(a, 4), (b, 2), (c, 1)]


async def test_the_hash_chain_links_every_record(store: EventStore, owner: Conn) -> None:
    """Each hash is sha256(prev_hash || record) over the record exactly as stored, the first
    prev_hash is 32 zero bytes, the record is RFC 8785 JSON with the position, id, place,
    recorded_at, submitter and payload_sha256 matching the columns, and payload_digest is
    sha256 of the stored payload."""
    await append_ok(store, event_json(), submitter="ingest-bot")
    await append_ok(
        store,
        at("sy-al-zkuf", place={"lat": 33.5, "lon": 38.0}, type="base_established"),
        event_json(quote="«Tiger Forces» entered Maskanah — 21 killed", notes="é\u2028"),
    )
    await append_ok(store, event_json(casualties={"killed": 21, "low": 30}))
    rows = await event_rows(owner)
    assert len(rows) == 4
    check_chain(rows)
    assert rows[0]["submitter"] == "ingest-bot"
    head_position, head_hash = await store.head()
    assert (head_position, head_hash) == (4, bytes(rows[-1]["hash"]))


async def test_the_payload_is_the_clients_event(store: EventStore, owner: Conn) -> None:
    """The stored payload decodes to exactly the event the client sent, and the page reader
    returns it with the stored hashes and digest."""
    sent = event_json(relates_to=[], notes="line one")
    await append_ok(store, sent)
    (row,) = await event_rows(owner)
    assert event_decoder.decode(row["payload"]) == event_decoder.decode(msgspec.json.encode(sent))
    (read,) = await store.page(0, 10, EVERYTHING)
    assert read.hash == bytes(row["hash"]).hex()
    assert read.prev_hash == bytes(32).hex()
    assert read.payload_digest == hashlib.sha256(bytes(read.event)).hexdigest()
    assert bytes(read.event) == row["payload"].encode()


# --- idempotency -----------------------------------------------------------------------------


async def test_a_duplicate_gets_the_original_receipt(store: EventStore, owner: Conn) -> None:
    """Sending a stored event again, even after others were appended, writes nothing and
    returns its original receipt (position, version, recorded_at, commit_position) marked
    duplicate."""
    original_event = event_json()
    (original,) = await append_ok(store, original_event)
    await append_ok(store, event_json(), event_json())
    before = await log_state(owner)
    (again,) = await append_ok(store, original_event)
    assert again == msgspec.structs.replace(original, duplicate=True)
    assert await log_state(owner) == before


async def test_a_retried_batch_gets_all_its_original_receipts(
    store: EventStore, owner: Conn
) -> None:
    """A whole batch sent again gets its original receipts, in order, all duplicates."""
    batch = (event_json(), at_place("sy-khanasser"), event_json())
    await append_ok(store, event_json())
    originals = await append_ok(store, *batch)
    before = await log_state(owner)
    again = await append_ok(store, *batch)
    assert again == [msgspec.structs.replace(r, duplicate=True) for r in originals]
    assert await log_state(owner) == before


async def test_the_same_id_with_other_content_is_an_id_conflict(
    store: EventStore, owner: Conn
) -> None:
    """An id already stored with other content is refused (IdConflict, a 422) naming the
    id, alone or inside a batch; nothing of the batch is written."""
    first = event_json()
    await append_ok(store, first)
    before = await log_state(owner)
    changed = event_json(id=first["id"], side="isis")
    error = await append_error(store, changed)
    assert isinstance(error, IdConflict)
    assert (error.event_id, error.field) == (first["id"], "id")
    error = await append_error(store, event_json(), changed)
    assert isinstance(error, IdConflict)
    assert (error.event_id, error.field) == (first["id"], "events[1].id")
    assert await log_state(owner) == before


async def test_a_partly_stored_batch_is_an_id_conflict(store: EventStore, owner: Conn) -> None:
    """A batch of which only some events are stored is refused as a whole (IdConflict, a
    422, naming the stored one); its new events are not written."""
    stored = event_json()
    await append_ok(store, stored)
    before = await log_state(owner)
    fresh = event_json()
    error = await append_error(store, fresh, stored)
    assert isinstance(error, IdConflict)
    assert error.event_id == stored["id"]
    assert error.field == "events"
    assert await log_state(owner) == before
    assert await store.get(uuid.UUID(fresh["id"])) is None


async def test_the_same_id_twice_in_a_batch_is_refused(store: EventStore, owner: Conn) -> None:
    """A batch that holds one id twice is refused, naming the second occurrence."""
    twice = event_json()
    error = await append_error(store, twice, event_json(), twice)
    assert isinstance(error, IdConflict)
    assert error.field == "events[2].id"
    assert (await log_state(owner))[0] == 0


async def test_ids_are_checked_before_expectations(store: EventStore, owner: Conn) -> None:
    """A stored batch retried with an ``expect`` that no longer holds gets its original
    receipts, not a 409: the retry of a request that did succeed must look like success."""
    batch = (at_place("sy-tabqa"), at_place("sy-tabqa"))
    originals = await append_ok(store, *batch, expect=[("sy-tabqa", "none")])
    await append_ok(store, at_place("sy-tabqa"))
    before = await log_state(owner)
    again = await append_ok(store, *batch, expect=[("sy-tabqa", "none")])
    assert again == [msgspec.structs.replace(r, duplicate=True) for r in originals]
    again = await append_ok(store, *batch, expect=[("sy-tabqa", 0)])
    assert again == [msgspec.structs.replace(r, duplicate=True) for r in originals]
    assert await log_state(owner) == before


# --- optimistic concurrency ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("place", "wanted", "actual"),
    [
        ("sy-maskanah", 1, 2),
        ("sy-maskanah", 3, 2),
        ("sy-maskanah", 0, 2),
        ("sy-maskanah", "none", 2),
        ("sy-raqqa", "any-existing", 0),
        ("sy-raqqa", 1, 0),
    ],
)
async def test_a_wrong_expectation_is_refused_and_nothing_written(
    place: str, wanted: int | str, actual: int, store: EventStore, owner: Conn
) -> None:
    """A mismatched expectation (a version, ``none``, ``any-existing``) fails the batch with
    WrongExpectedVersion (a 409) naming the place, what was expected and the actual
    version, and writes nothing of the batch, not even its events about other places."""
    await append_ok(store, event_json(), event_json())
    before = await log_state(owner)
    error = await append_error(
        store, at_place("sy-khanasser"), at_place(place), expect=[(place, wanted)]
    )
    assert isinstance(error, WrongExpectedVersion)
    assert (error.place, error.expected, error.actual) == (place, wanted, actual)
    assert f"version {actual}" in error.detail
    assert await log_state(owner) == before


async def test_expectations_that_hold_let_the_batch_through(store: EventStore) -> None:
    """``none`` on a new place, a version equal to the place's, and ``any-existing`` on a
    place with events all hold; several expectations in one batch must all hold, and an
    expectation may name a place the batch does not write to."""
    (first,) = await append_ok(store, event_json(), expect=[("sy-maskanah", "none")])
    assert first.place_version == 1
    await append_ok(store, event_json(), expect=[("sy-maskanah", 1)])
    await append_ok(store, event_json(), expect=[("sy-maskanah", "any-existing")])
    receipts = await append_ok(
        store,
        at_place("sy-khanasser"),
        expect=[("sy-maskanah", 3), ("sy-khanasser", "none"), ("sy-maskanah", "any-existing")],
    )
    assert [(r.place, r.place_version) for r in receipts] == [("sy-khanasser", 1)]
    error = await append_error(
        store, event_json(), expect=[("sy-maskanah", 3), ("sy-khanasser", "none")]
    )
    assert isinstance(error, WrongExpectedVersion)
    assert (error.place, error.actual) == ("sy-khanasser", 1)


# --- groups ----------------------------------------------------------------------------------


async def test_a_failing_request_does_not_fail_its_group(store: EventStore, owner: Conn) -> None:
    """In one group commit, each request succeeds or fails on its own, exactly as if run
    alone in order: failures leave no hole in the positions, the others share one commit."""
    stored = event_json()
    await append_ok(store, stored)
    outcomes = await store.append_group(
        [
            request(event_json()),
            request(at_place("sy-raqqa"), expect=[("sy-raqqa", 5)]),
            request(event_json(id=stored["id"], side="sdf")),
            request(statement(uuid.uuid4(), "denies", "Amaq")),
            request(event_json(), at_place("sy-khanasser")),
            request(stored),
        ]
    )
    good, wrong_version, conflict, bad_link, batch, duplicate = outcomes
    assert isinstance(wrong_version, WrongExpectedVersion)
    assert isinstance(conflict, IdConflict)
    assert isinstance(bad_link, InvalidEvent)
    assert isinstance(good, list)
    assert isinstance(batch, list)
    assert isinstance(duplicate, list)
    assert [r.position for r in good + batch] == [2, 3, 4]
    assert {r.commit_position for r in good + batch} == {4}
    assert [(r.position, r.duplicate) for r in duplicate] == [(1, True)]
    assert [r["position"] for r in await event_rows(owner)] == [1, 2, 3, 4]
    check_chain(await event_rows(owner))


async def test_the_group_committer_isolates_a_bad_request(
    committer: GroupCommitter, owner: Conn
) -> None:
    """Requests sent concurrently through the GroupCommitter share commits; the one whose
    expectation fails gets its WrongExpectedVersion and every other gets its receipts."""
    requests = [request(event_json()) for _ in range(7)]
    requests.insert(3, request(at_place("sy-raqqa"), expect=[("sy-raqqa", "any-existing")]))
    outcomes = await asyncio.gather(
        *(committer.append(r) for r in requests), return_exceptions=True
    )
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failed) == 1
    assert isinstance(outcomes[3], WrongExpectedVersion)
    receipts = [o[0] for o in outcomes if isinstance(o, list)]
    assert sorted(r.position for r in receipts) == list(range(1, 8))
    assert len({r.commit_position for r in receipts}) < len(receipts), "nothing was grouped"
    assert [r["position"] for r in await event_rows(owner)] == list(range(1, 8))


async def test_a_retry_in_the_same_group_gets_the_original_receipt(
    store: EventStore, owner: Conn
) -> None:
    """A client that retries while its first request still waits in the committer's queue
    (both land in one group commit) gets the same receipt as the first, marked duplicate:
    same position, version, recorded_at and commit_position. The event is written once."""
    event = event_json()
    first, retry = await store.append_group([request(event), request(event)])
    assert isinstance(first, list)
    assert isinstance(retry, list)
    assert [r.duplicate for r in first + retry] == [False, True]
    assert (retry[0].position, retry[0].recorded_at) == (first[0].position, first[0].recorded_at)
    assert retry[0].commit_position == first[0].commit_position, (
        "the duplicate receipt of an event first stored in the same group commit carries "
        f"commit_position={retry[0].commit_position}, the original says "
        f"{first[0].commit_position}"
    )
    assert retry == [msgspec.structs.replace(r, duplicate=True) for r in first]
    assert len(await event_rows(owner)) == 1


# --- links -----------------------------------------------------------------------------------


async def test_a_link_to_a_missing_event_is_refused(store: EventStore, owner: Conn) -> None:
    """relates_to naming an event that is not in the log is InvalidEvent (a 422) naming the
    field, alone or inside a batch; nothing is written."""
    missing = uuid.uuid4()
    await append_ok(store, event_json())
    before = await log_state(owner)
    error = await append_error(store, statement(missing, "denies", "Amaq"))
    assert type(error) is InvalidEvent
    assert error.field == "relates_to[0].event"
    assert str(missing) in error.detail
    error = await append_error(
        store, event_json(), event_json(relates_to=link(missing, "confirms"))
    )
    assert type(error) is InvalidEvent
    assert error.field == "events[1].relates_to[0].event"
    assert await log_state(owner) == before


@pytest.mark.parametrize("relation", ["retracts", "corrects", "supersedes"])
async def test_only_the_same_source_may_retract(
    relation: str, store: EventStore, owner: Conn
) -> None:
    """Retracting, correcting or superseding an event is for its own source only: another
    source gets NotTheSource (403) naming the link; the same source, spelt with other case
    and spacing, may, from the key that appended the original."""
    (original,) = await append_ok(store, event_json(source={"name": "South Front"}))
    before = await log_state(owner)
    error = await append_error(store, statement(original, relation, "Amaq"))
    assert type(error) is NotTheSource
    assert error.field == "relates_to[0].event"
    assert await log_state(owner) == before
    (accepted,) = await append_ok(store, statement(original, relation, "  south   FRONT "))
    assert accepted.position == 2


@pytest.mark.parametrize("relation", ["retracts", "corrects", "supersedes"])
async def test_only_the_key_that_appended_an_event_may_withdraw_it(
    relation: str, store: EventStore, owner: Conn
) -> None:
    """The same source name from another key is refused, stored or read back from the log
    (the submitter column); the key that appended it, or an admin, may withdraw it."""
    (original,) = await append_ok(store, event_json(), submitter="alice")
    before = await log_state(owner)
    error = await append_error(store, statement(original, relation, "South Front"), submitter="eve")
    assert type(error) is NotTheSource
    assert error.field == "relates_to[0].event"
    assert await log_state(owner) == before
    cli = await append_error(store, statement(original, relation, "South Front"))
    assert type(cli) is NotTheSource
    await append_ok(store, statement(original, relation, "South Front"), submitter="alice")
    await append_ok(
        store, statement(original, relation, "South Front"), submitter="root", admin=True
    )


async def test_an_import_refuses_a_foreign_withdrawal_by_line(
    store: EventStore, owner: Conn
) -> None:
    """An NDJSON import rejects a line that withdraws another key's event, with its number
    and reason, and stores the others, including a line that withdraws an event of an
    earlier line of the same import (same key)."""
    (original,) = await append_ok(store, event_json(), submitter="alice")
    mine = event_json()
    lines = [
        event_json(),
        statement(original, "retracts", "South Front"),
        mine,
        statement(uuid.UUID(mine["id"]), "retracts", "South Front"),
    ]
    data = b"".join(msgspec.json.encode(line) + b"\n" for line in lines)
    result = await import_ndjson(
        store, split_lines(_chunks(data, 64)), chunk_size=2, submitter="eve"
    )
    assert (result.accepted, result.rejected) == (3, 1)
    (refused,) = result.errors
    assert (refused.line, refused.field) == (2, "relates_to[0].event")
    assert "API key" in refused.reason
    assert await owner.fetchval("SELECT count(*) FROM events WHERE submitter = 'eve'") == 3


@pytest.mark.parametrize("relation", ["denies", "confirms"])
async def test_another_source_may_deny_or_confirm(relation: str, store: EventStore) -> None:
    """Another source may deny or confirm an event."""
    (original,) = await append_ok(store, event_json())
    (accepted,) = await append_ok(store, statement(original, relation, "Amaq"))
    found = await store.get(original.id)
    assert found is not None
    assert [(lf.id, lf.position, lf.relation) for lf in found[1]] == [
        (accepted.id, accepted.position, relation)
    ]


async def test_a_link_to_an_earlier_event_of_the_same_batch_works(
    store: EventStore, owner: Conn
) -> None:
    """Within one batch an event may link to an earlier event of that batch (not to a later
    one); the links are stored and read back in reverse by ``get``."""
    first = event_json()
    retraction = statement(uuid.UUID(first["id"]), "retracts", "South Front")
    denial = statement(uuid.UUID(first["id"]), "denies", "Amaq")
    receipts = await append_ok(store, first, retraction, denial)
    assert [r.position for r in receipts] == [1, 2, 3]
    found = await store.get(uuid.UUID(first["id"]))
    assert found is not None
    event, linked_from, submitter = found
    assert submitter is None  # appended without a key
    assert event.position == 1
    assert [(lf.id, lf.position, lf.relation) for lf in linked_from] == [
        (receipts[1].id, 2, "retracts"),
        (receipts[2].id, 3, "denies"),
    ]
    links = await owner.fetch("SELECT position, id, target, relation FROM event_links")
    assert len(links) == 2
    later = event_json()
    error = await append_error(store, statement(uuid.UUID(later["id"]), "denies", "Amaq"), later)
    assert type(error) is InvalidEvent
    assert error.field == "events[0].relates_to[0].event"


async def test_get_of_an_unknown_id_is_none(store: EventStore) -> None:
    """``get`` of an id nobody stored answers None (the API's 404)."""
    assert await store.get(uuid.uuid4()) is None


# --- time ------------------------------------------------------------------------------------


async def test_recorded_at_never_decreases_along_positions(
    store: EventStore, committer: GroupCommitter, owner: Conn
) -> None:
    """recorded_at is taken under the head lock: along positions it never decreases, the
    events of one commit share it, and each receipt says what was stored."""
    receipts: list[Receipt] = []
    for _ in range(5):
        receipts += await append_ok(store, event_json(), at_place("sy-khanasser"))
    for outcome in await asyncio.gather(
        *(committer.append(request(event_json())) for _ in range(40))
    ):
        receipts += outcome
    rows = await event_rows(owner)
    assert len(rows) == 50
    stamps = [r["recorded_at"] for r in rows]
    assert stamps == sorted(stamps)
    by_commit: dict[int, set[object]] = {}
    for row in rows:
        by_commit.setdefault(row["commit_position"], set()).add(row["recorded_at"])
    assert all(len(s) == 1 for s in by_commit.values())
    stored = {r["id"]: r["recorded_at"] for r in rows}
    assert all(stored[r.id] == r.recorded_at for r in receipts)


# --- the place registry ----------------------------------------------------------------------


async def test_the_first_event_registers_a_place(store: EventStore, owner: Conn) -> None:
    """The first event naming a place registers its name, kind, point, parent, precision
    and aliases (not the name itself), with version 1."""
    await append_ok(
        store,
        event_json(
            place={
                "parent": "sy-aleppo-governorate",
                "precision": "exact",
                "aliases": ["Maskana", "Maskanah", "Meskene"],
            }
        ),
    )
    row = await owner.fetchrow(
        "SELECT id, name, kind, lat, lon, parent, aliases, precision, version, first_position, "
        "last_position FROM places"
    )
    assert row is not None
    assert dict(row) == {
        "id": "sy-maskanah",
        "name": "Maskanah",
        "kind": "town",
        "lat": 35.96,
        "lon": 38.04,
        "parent": "sy-aleppo-governorate",
        "aliases": ["Maskana", "Meskene"],
        "precision": "exact",
        "version": 1,
        "first_position": 1,
        "last_position": 1,
    }


async def test_later_events_add_aliases_and_missing_details(store: EventStore, owner: Conn) -> None:
    """Later events keep the registered name, add their aliases and any new name as aliases,
    fill in a point the place lacked (never move a known one), and bring the version up."""
    await append_ok(store, at("sy-khanasser", place={"name": "Khanasser"}))
    await append_ok(store, at("sy-khanasser", place={"name": "Khanaser", "aliases": ["K"]}))
    await append_ok(
        store,
        at("sy-khanasser", place={"name": "Khanasser", "lat": 35.78, "lon": 37.5}),
        at("sy-khanasser", place={"name": "Khanasser", "aliases": ["Hanasir"]}),
    )
    await append_ok(store, at("sy-khanasser", place={"name": "Khanasser", "lat": 1.0, "lon": 2.0}))
    row = await owner.fetchrow("SELECT name, lat, lon, aliases, version, last_position FROM places")
    assert row is not None
    assert dict(row) == {
        "name": "Khanasser",
        "lat": 35.78,
        "lon": 37.5,
        "aliases": ["Hanasir", "K", "Khanaser"],
        "version": 5,
        "last_position": 5,
    }


async def test_an_event_without_a_name_adds_no_alias(store: EventStore, owner: Conn) -> None:
    """An event that names a known place by id only (no ``name``) adds no alias: the
    place's id is not one of its names."""
    await append_ok(store, event_json())
    await append_ok(store, event_json(place={"name": None, "kind": None, "lat": None, "lon": None}))
    row = await owner.fetchrow("SELECT name, aliases, version FROM places")
    assert row is not None
    assert (row["name"], row["version"]) == ("Maskanah", 2)
    assert row["aliases"] == [], f"aliases became {row['aliases']} from an event naming no name"


# --- reads -----------------------------------------------------------------------------------


async def _mixed_log(store: EventStore) -> None:
    """Nine events: three places, four types, three spellings of South Front, and Amaq."""
    await append_ok(store, event_json(source={"name": "South Front"}))
    await append_ok(store, at_place("sy-khanasser", type="advance", source={"name": "Amaq"}))
    await append_ok(
        store,
        event_json(type="encirclement", source={"name": "south front"}),
        at_place("sy-deir-ezzor", type="strike", side=None, source={"name": "Amaq"}),
    )
    await append_ok(store, event_json(source={"name": "  SOUTH   Front"}))
    await append_ok(store, at_place("sy-khanasser", source={"name": "ANHA"}))
    await append_ok(store, at_place("sy-deir-ezzor", source={"name": "South  Front"}))
    await append_ok(store, event_json(type="advance", source={"name": "Amaq"}))
    await append_ok(store, at_place("sy-khanasser", type="strike", side=None))


async def test_page_filters_by_place_type_and_source(store: EventStore) -> None:
    """A page holds the events after a position in position order, at most ``limit``, and
    may be narrowed to one place, one type, one source (names matched case and spacing
    aside, through the source key) or any combination."""
    await _mixed_log(store)
    assert await positions(store) == list(range(1, 10))
    assert [e.position for e in await store.page(3, 4, EVERYTHING)] == [4, 5, 6, 7]
    assert await positions(store, EventFilter(place="sy-maskanah")) == [1, 3, 5, 8]
    assert await positions(store, EventFilter(place="sy-khanasser")) == [2, 6, 9]
    assert await positions(store, EventFilter(type="advance")) == [2, 8]
    assert await positions(store, EventFilter(type="strike")) == [4, 9]
    south_front = [1, 3, 5, 7, 9]
    for spelling in ("South Front", "SOUTH FRONT", " south   front "):
        assert await positions(store, EventFilter(source=source_key(spelling))) == south_front
    assert await positions(store, EventFilter(source=source_key("amaq"))) == [2, 4, 8]
    both = EventFilter(place="sy-maskanah", type="capture", source=source_key("South Front"))
    assert await positions(store, both) == [1, 5]
    assert await positions(store, EventFilter(place="sy-nowhere")) == []
    page = await store.page(0, 100, EventFilter(place="sy-deir-ezzor"))
    assert [(e.place, e.place_version, e.type) for e in page] == [
        ("sy-deir-ezzor", 1, "strike"),
        ("sy-deir-ezzor", 2, "capture"),
    ]


async def test_stream_yields_every_selected_event(store: EventStore) -> None:
    """``stream`` yields the same events as pages would, all of them, in position order,
    after a position, filtered, and up to a limit."""

    async def streamed(after: int, where: EventFilter, limit: int | None = None) -> list[int]:
        return [e.position async for e in store.stream(after, where, limit)]

    await _mixed_log(store)
    for _ in range(3):
        await append_ok(store, *(event_json() for _ in range(700)))
    every = await streamed(0, EVERYTHING)
    assert every == list(range(1, 2110))
    pages = [e async for e in store.stream(0, EVERYTHING)]
    assert pages[:9] == await store.page(0, 9, EVERYTHING)
    assert await streamed(2100, EVERYTHING) == list(range(2101, 2110))
    assert await streamed(0, EventFilter(place="sy-khanasser")) == [2, 6, 9]
    assert await streamed(5, EventFilter(source=source_key("amaq"))) == [8]
    assert await streamed(0, EVERYTHING, limit=3) == [1, 2, 3]


# --- NDJSON import ---------------------------------------------------------------------------


def _ndjson_file() -> tuple[bytes, list[dict[str, Any]]]:
    """A file with good lines, blank lines, a malformed, two invalid lines, an in-file
    duplicate and an id conflict; the good events in file order."""
    a, b, c, d = event_json(), at_place("sy-khanasser"), event_json(type="advance"), event_json()
    a_changed = event_json(id=a["id"], side="isis")
    encode = msgspec.json.encode
    lines = [
        encode(a),  # 1
        b"",  # 2: blank
        encode(b),  # 3
        b'{"type": "capture", "place": ',  # 4: malformed JSON
        encode(event_json(type="rumour")),  # 5: no such type
        encode(event_json(place={"lon": None})),  # 6: lat without lon
        encode(a),  # 7: duplicate of line 1
        encode(a_changed),  # 8: same id, other content
        b"   \t",  # 9: blank
        encode(c) + b"\r",  # 10: CRLF line end
        encode(d),  # 11: the last line, without a newline
    ]
    return b"\n".join(lines), [a, b, c, d]


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    """The file in chunks of ``size`` bytes, with empty chunks between, as a socket gives it."""
    for start in range(0, len(data), size):
        yield data[start : start + size]
        yield b""


def _rejected(result_errors: Sequence[Any]) -> list[tuple[int, str | None]]:
    return [(e.line, e.field) for e in result_errors]


@pytest.mark.parametrize("chunk_size", [1, 2, 1000])
async def test_ndjson_import_reports_every_line(
    chunk_size: int, store: EventStore, owner: Conn
) -> None:
    """An import stores the good lines in file order and reports each bad one with its line
    number (blank lines counted, lines split across chunks joined), its reason and field;
    a duplicate within the file counts as a duplicate, whatever the commit chunk size."""
    data, good = _ndjson_file()
    result = await import_ndjson(store, split_lines(_chunks(data, 7)), chunk_size=chunk_size)
    assert (result.accepted, result.duplicate, result.rejected) == (4, 1, 4)
    assert _rejected(result.errors) == [(4, None), (5, "type"), (6, "place.lon"), (8, "id")]
    assert result.errors[0].reason.startswith("malformed JSON")
    assert "rumour" in result.errors[1].reason
    assert result.errors[3].id == uuid.UUID(good[0]["id"])
    assert result.last_position == 4
    rows = await event_rows(owner)
    assert [str(r["id"]) for r in rows] == [e["id"] for e in good]
    check_chain(rows)


async def test_ndjson_reimport_gives_all_duplicates(store: EventStore, owner: Conn) -> None:
    """Importing the same file again stores nothing: every good line is a duplicate and the
    bad lines are reported again with the same numbers."""
    data, _ = _ndjson_file()
    first = await import_ndjson(store, split_lines(_chunks(data, 64)), chunk_size=2)
    before = await log_state(owner)
    again = await import_ndjson(store, split_lines(_chunks(data, 5)), chunk_size=3)
    assert (again.accepted, again.duplicate, again.rejected) == (0, 5, 4)
    assert _rejected(again.errors) == _rejected(first.errors)
    assert again.last_position == first.last_position == 4
    assert await log_state(owner) == before


async def test_split_lines_numbers_lines_across_chunks() -> None:
    """split_lines numbers lines from 1 counting blank ones, skips blank lines, joins a line
    split across any number of chunks, and yields a last line without a newline."""

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"ab", b"c\n\n", b"", b"d", b"e", b"f\n  \nlast"):
            yield part

    assert [x async for x in split_lines(chunks())] == [(1, b"abc"), (3, b"def"), (5, b"last")]


async def test_the_submitter_is_stored(store: EventStore, owner: Conn) -> None:
    """The submitter of an import is stored on each of its events and in their records."""
    data = msgspec.json.encode(event_json()) + b"\n"
    await import_ndjson(store, split_lines(_chunks(data, 100)), chunk_size=10, submitter="bulk")
    (row,) = await event_rows(owner)
    assert row["submitter"] == "bulk"
    assert '"submitter":"bulk"' in row["record"]


def test_helpers_build_what_the_api_builds() -> None:
    """The requests of these tests carry prepared events as the API makes them."""
    built = request(event_json(), expect=[("sy-maskanah", 0)])
    assert built.events[0].payload_digest == hashlib.sha256(built.events[0].payload).digest()
    assert built.expect[0].version == 0
    assert prepared().place_id == "sy-maskanah"
