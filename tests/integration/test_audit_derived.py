"""What verify checks besides the chain: the tables derived from the log.

``event_links`` must hold exactly the links the payloads state, and the projection rows
(``segments``) must equal a refold of the log. Each test appends a log through a store that
projects, then, as the owning role, alters a derived table behind the service's back (as an
attacker with the database would), and checks that verify names what differs while the
chain itself still verifies.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from contracts.audit import VerifyReport
from service.projections.timelines import TimelineProjector
from service.store.audit import AuditReader, ProjectionMode
from service.store.events import EventStore
from tests.integration.helpers import Conn, append_ok
from tests.payloads import at_place, event_json

JUNE_2: datetime = datetime(2017, 6, 2, tzinfo=UTC)


@pytest.fixture
async def projected(pool: asyncpg.Pool) -> EventStore:
    """A store that keeps the projections in each append, as the service does."""
    return EventStore(pool, TimelineProjector())


@pytest.fixture
async def log(projected: EventStore) -> list[uuid.UUID]:
    """Seven events over three places, two of them statements about the first; their ids."""
    ids: list[uuid.UUID] = []
    first = event_json(type="control", side="isis", occurred={"start": "2017-06-02"})
    for body in (
        first,
        event_json(),
        at_place("sy-raqqa", type="control", side="isis"),
        event_json(
            type="statement",
            side=None,
            source={"name": "SOHR"},
            relates_to=[{"event": first["id"], "relation": "denies"}],
        ),
        at_place("sy-deir-hafer"),
        event_json(
            type="statement",
            side=None,
            source={"name": "ANHA"},
            relates_to=[{"event": first["id"], "relation": "confirms"}],
        ),
        at_place("sy-raqqa", occurred={"start": "2017-06-09"}),
    ):
        (receipt,) = await append_ok(projected, body)
        ids.append(receipt.id)
    return ids


@pytest.fixture
async def links_open(owner: Conn) -> AsyncIterator[Conn]:
    """The owner's connection with event_links' append-only triggers off."""
    await owner.execute("ALTER TABLE event_links DISABLE TRIGGER USER")
    yield owner
    await owner.execute("ALTER TABLE event_links ENABLE TRIGGER USER")


async def verify(
    pool: asyncpg.Pool, projections: ProjectionMode = "full", sample_events: int = 10_000
) -> VerifyReport:
    """A verification of the whole log."""
    reader = AuditReader(pool, None, sample_events=sample_events)
    return await reader.verify(None, None, projections=projections)


def chain_holds(report: VerifyReport) -> None:
    """The chain itself verifies: what differs is derived from it."""
    assert report.failure is None, report.failure
    assert report.checked == 7


async def test_an_untouched_log_verifies_links_and_projections(
    pool: asyncpg.Pool, log: list[uuid.UUID]
) -> None:
    """With nothing altered, the links agree and every row equals the refold, fully or in a
    sample that covers the whole (small) log; ``off`` checks nothing and says so."""
    full = await verify(pool)
    assert full.ok
    assert (full.links.ok, full.links.checked, full.links.rows) == (True, 7, 2)
    projections = full.projections
    assert (projections.mode, projections.ok, projections.position) == ("full", True, 7)
    assert projections.policy == "credibility-v2@1"
    assert (projections.places, projections.places_checked, projections.events_checked) == (
        3,
        3,
        7,
    )
    assert projections.rows_checked > 3
    assert projections.differing == 0
    sample = (await verify(pool, "sample")).projections
    assert (sample.ok, sample.places, sample.places_checked, sample.events_checked) == (
        True,
        3,
        3,
        7,
    )
    assert sample.rows_checked == projections.rows_checked
    off = await verify(pool, "off")
    assert off.ok
    assert (off.projections.mode, off.projections.ok, off.projections.places_checked) == (
        "off",
        None,
        0,
    )


async def test_a_forged_link_row_is_named_and_never_served(
    pool: asyncpg.Pool, projected: EventStore, log: list[uuid.UUID], owner: Conn
) -> None:
    """Issue 13: a row saying event 2 retracts event 1, inserted by SQL, passed verify and
    was served by GET /v1/events/{id}. Now verify names position 2 and the row, and the
    event's linked_from lists only what payloads state."""
    await owner.execute(
        "INSERT INTO event_links (position, id, target, relation) VALUES (2, $1, $2, 'retracts')",
        log[1],
        log[0],
    )
    report = await verify(pool, "off")
    chain_holds(report)
    assert not report.ok
    failure = report.links.failure
    assert failure is not None
    assert (failure.position, failure.id, failure.target, failure.relation) == (
        2,
        log[1],
        log[0],
        "retracts",
    )
    assert "payload does not say so" in failure.reason
    assert report.links.checked == 1
    found = await projected.get(log[0])
    assert found is not None
    _, linked_from, _ = found
    assert [(lf.id, lf.relation) for lf in linked_from] == [
        (log[3], "denies"),
        (log[5], "confirms"),
    ]


async def test_a_deleted_link_row_is_named(
    pool: asyncpg.Pool, log: list[uuid.UUID], links_open: Conn
) -> None:
    """A link a payload states and event_links lacks (it would vanish from linked_from)."""
    await links_open.execute("DELETE FROM event_links WHERE id = $1", log[5])
    failure = (await verify(pool, "off")).links.failure
    assert failure is not None
    assert (failure.position, failure.id, failure.relation) == (6, log[5], "confirms")
    assert "event_links has no such row" in failure.reason


@pytest.mark.parametrize(
    ("change", "position", "words"),
    [
        ("position = 5", 4, "has no such row"),  # moved to another event's position
        ("position = 99", 6, "has no such row"),  # past the head: position 6 lacks it first
        ("relation = 'retracts'", 4, "payload does not say so"),
        ("target = gen_random_uuid()", 4, "payload does not say so"),
    ],
)
async def test_an_altered_link_row_is_named(
    pool: asyncpg.Pool,
    log: list[uuid.UUID],
    links_open: Conn,
    change: str,
    position: int,
    words: str,
) -> None:
    """A link row moved, retargeted or given another relation is named at the first
    position where the table and the payloads part."""
    target = log[3] if position == 4 else log[5]
    await links_open.execute(f"UPDATE event_links SET {change} WHERE id = $1", target)
    failure = (await verify(pool, "off")).links.failure
    assert failure is not None
    assert failure.position == position, failure
    assert words in failure.reason


async def test_a_link_row_outside_the_log_is_named(
    pool: asyncpg.Pool, log: list[uuid.UUID], owner: Conn
) -> None:
    """A row at a position the log does not have (past the head) is named with it, when
    the whole log is verified; a range that stops before it does not look at it."""
    await owner.execute(
        "INSERT INTO event_links (position, id, target, relation) VALUES (40, $1, $2, 'denies')",
        uuid.uuid4(),
        log[0],
    )
    failure = (await verify(pool, "off")).links.failure
    assert failure is not None
    assert failure.position == 40
    assert "where the log has no event" in failure.reason
    part = await AuditReader(pool, None).verify(1, 7, projections="off")
    assert part.ok


async def test_an_edited_segment_body_is_named(
    pool: asyncpg.Pool, log: list[uuid.UUID], owner: Conn
) -> None:
    """Issue 13: a segments body edited to controller `mallory-side` was served while verify
    said ok. Now the refold names the place, the row's valid start and known range, and the
    field, in full and in a sample that covers it."""
    edited = await owner.fetchrow(
        'UPDATE segments SET body = replace(body, \'"controller":"isis"\', '
        '\'"controller":"mallory-side"\') '
        "WHERE place_id = 'sy-maskanah' AND valid_from = $1 AND known_to IS NULL "
        "RETURNING known_from",
        JUNE_2,
    )
    assert edited is not None
    for mode in ("full", "sample"):
        report = await verify(pool, mode)
        chain_holds(report)
        assert report.links.ok
        assert not report.ok
        assert report.projections.ok is False
        assert report.projections.differing == 1
        failure = report.projections.failure
        assert failure is not None
        assert (failure.place, failure.valid_from) == ("sy-maskanah", JUNE_2)
        assert (failure.known_from, failure.known_to) == (edited["known_from"], None)
        assert "body.controller" in failure.reason
        assert "mallory-side" in failure.reason
    off = await verify(pool, "off")
    assert off.ok  # not looked at: the answer says so with mode "off" and ok null


async def test_an_edited_column_a_removed_and_an_added_row_are_named(
    pool: asyncpg.Pool, log: list[uuid.UUID], owner: Conn
) -> None:
    """Each kind of difference is named: a column, a missing row, an extra row, rows of a
    place the log does not have (found by the sample too, whatever it picks)."""
    await owner.execute(
        "UPDATE segments SET controller = 'mallory-side' WHERE place_id = 'sy-deir-hafer'"
    )
    failure = (await verify(pool)).projections.failure
    assert failure is not None
    assert failure.place == "sy-deir-hafer"
    assert "column controller" in failure.reason
    await owner.execute("DELETE FROM segments WHERE place_id = 'sy-deir-hafer'")
    failure = (await verify(pool)).projections.failure
    assert failure is not None
    assert failure.place == "sy-deir-hafer"
    assert "segments lacks this row" in failure.reason
    await owner.execute(
        "INSERT INTO segments (place_id, valid_from, valid_to, known_from, known_to, controller,"
        " status, status_by, disputed, confidence, basis, body) SELECT 'sy-atlantis', valid_from,"
        " valid_to, known_from, known_to, controller, status, status_by, disputed, confidence,"
        " basis, body FROM segments WHERE place_id = 'sy-raqqa'"
    )
    full = (await verify(pool)).projections
    assert full.differing == 2
    assert full.places == 3  # a place with rows and no event is not one of the log's
    assert full.failure is not None
    assert full.failure.place == "sy-atlantis"
    assert "segments holds a row the refold does not make" in full.failure.reason
    empty = (await verify(pool, "sample", sample_events=0)).projections
    assert (empty.places_checked, empty.differing, empty.too_large) == (0, 1, 3)
    assert empty.failure is not None
    assert empty.failure.place == "sy-atlantis"
    assert "no event up to position 7" in empty.failure.reason


async def test_a_sample_refolds_places_within_its_budget(
    pool: asyncpg.Pool, log: list[uuid.UUID], owner: Conn
) -> None:
    """The sample picks places at random while their events fit in the budget, so its cost
    is bounded; a place it did not pick is not looked at (``full`` looks at all), and one
    larger than the budget never is (the answer counts those)."""
    await owner.execute("UPDATE segments SET confidence = 99 WHERE place_id = 'sy-raqqa'")
    for _ in range(10):
        # Maskanah (4 events) never fits; Raqqa (2) or Deir Hafer (1) fills the budget.
        sample = (await verify(pool, "sample", sample_events=2)).projections
        assert (sample.places, sample.places_checked, sample.too_large) == (3, 1, 1)
        if sample.events_checked == 2:
            assert sample.failure is not None
            assert sample.failure.place == "sy-raqqa"
        else:
            assert (sample.events_checked, sample.ok) == (1, True)
    full = (await verify(pool)).projections
    assert full.failure is not None
    assert full.failure.place == "sy-raqqa"
    assert "column confidence is 99" in full.failure.reason


async def test_rows_of_another_policy_are_named(
    pool: asyncpg.Pool, log: list[uuid.UUID], owner: Conn
) -> None:
    """Rows the projection state says another policy made are not the served policy's: one
    failure naming both policies, with no place."""
    await owner.execute("UPDATE projection_state SET policy = 'credibility-v1'")
    failure = (await verify(pool, "sample")).projections.failure
    assert failure is not None
    assert failure.place is None
    assert "credibility-v1" in failure.reason
    assert "frontline rebuild" in failure.reason
