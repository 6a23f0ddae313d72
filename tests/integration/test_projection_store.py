"""The bitemporal ``segments`` table kept by the append transaction (DESIGN 5), on PostgreSQL.

Random logs go through ``EventStore.append_group`` (and ``GroupCommitter``) with a
``TimelineProjector``. The oracle is the pure ``project_place`` over the events the receipts
say were stored at positions up to a commit: the rows known at every commit must be exactly
its rows, at once and forever after (the known axis is exact to the commit and history is
never rewritten); a rebuild must reproduce the rows bit for bit; the projector's event cache
must never make a difference (dropped, evicted, another process writing, a rolled-back
append). Rows are read as the owner, with this file's own SQL, not the store's read queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeVar

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.events import Event
from contracts.responses import Receipt
from service.domain.append import AppendRequest
from service.domain.bitemporal import rows_of
from service.domain.errors import FrontlineError
from service.domain.policy import CREDIBILITY_V2
from service.domain.projection import project_place
from service.domain.records import prepare_event, source_key
from service.domain.registry import EMPTY, SideRegistry
from service.projections.timelines import TimelineProjector, projection_state
from service.settings import Settings
from service.store.appender import GroupCommitter
from service.store.db import Connector, create_pool
from service.store.events import EventStore
from tests.integration.helpers import Conn, expectation
from tests.unit.builders import (
    GOV,
    ISIS,
    SDF,
    US,
    capture,
    casualties,
    confirmation,
    control,
    denial,
    event,
    link,
    retraction,
    source,
    statement,
)

if TYPE_CHECKING:
    from service.projections.timelines import Connection

T = TypeVar("T")

SIDES: Final = (GOV, ISIS, SDF, US)
SOURCES: Final = (
    source("Alpha", "B"),
    source("Bravo", "C", GOV),
    source("Charlie", "D", ISIS),
    source("Delta", "F"),
    source("Echo", "A", SDF),
    source("  alpha ", "E"),  # the same source as "Alpha" (case and spacing aside)
)
KINDS: Final = (
    *("capture",) * 4,
    *("control",) * 3,
    *("withdrawal",) * 2,
    "base_established",
    "base_evacuated",
    *("encirclement",) * 2,
    "siege_lifted",
    *("clash",) * 2,
    "counter_attack",
    "advance",
    *("casualties",) * 2,
)
ROW_COLUMNS: Final = (
    "place_id, valid_from, valid_to, controller, status, status_by, disputed, confidence, "
    "basis, body"
)
ALL_COLUMNS: Final = (
    "place_id, valid_from, valid_to, known_from, known_to, controller, status, status_by, "
    "disputed, confidence, basis, body"
)
KNOWN_AT: Final = f"""
    SELECT {ROW_COLUMNS}
    FROM segments
    WHERE place_id = ANY($1::text[])
      AND known_from <= $2 AND (known_to IS NULL OR known_to > $2)
    ORDER BY place_id, valid_from
"""
OVERLAPS: Final = """
    SELECT a.place_id, a.valid_from, a.known_from, a.known_to, b.known_from, b.known_to
    FROM segments AS a
    JOIN segments AS b
      ON a.place_id = b.place_id AND a.valid_from = b.valid_from AND a.ctid < b.ctid
     AND int8range(a.known_from, a.known_to, '[)') && int8range(b.known_from, b.known_to, '[)')
    WHERE a.place_id = ANY($1::text[])
"""
KNOWN_BOUNDS: Final = """
    SELECT known_from AS p FROM segments WHERE place_id = ANY($1::text[])
    UNION
    SELECT known_to FROM segments WHERE place_id = ANY($1::text[]) AND known_to IS NOT NULL
"""
SNAPSHOT: Final = f"SELECT {ALL_COLUMNS} FROM segments ORDER BY place_id, valid_from, known_from"

Row = tuple[object, ...]


# --------------------------------------------------------------------------------------------
# Random logs, drawn by hypothesis or by a seeded random.Random through one interface


class Pick(Protocol):
    """A source of choices: hypothesis draws (shrinkable) or a seeded ``random.Random``."""

    def number(self, low: int, high: int) -> int:
        """An integer in ``[low, high]``."""

    def one(self, items: Sequence[T]) -> T:
        """One of ``items``."""


@dataclass(slots=True)
class DrawPick:
    """Choices drawn by hypothesis."""

    draw: st.DrawFn

    def number(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def one(self, items: Sequence[T]) -> T:
        return self.draw(st.sampled_from(items))


@dataclass(slots=True)
class RandomPick:
    """Choices from a seeded ``random.Random``."""

    rng: random.Random

    def number(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def one(self, items: Sequence[T]) -> T:
        return self.rng.choice(items)


Kind = Literal["new", "duplicate", "refused"]


@dataclass(frozen=True, slots=True)
class Req:
    """One request of a group, and what the store must make of it."""

    events: tuple[Event, ...]
    kind: Kind
    expect: tuple[tuple[str, int | str], ...] = ()

    def request(self) -> AppendRequest:
        """The request as the API hands it to the store (events prepared afresh)."""
        return AppendRequest(
            events=tuple(prepare_event(e) for e in self.events),
            expect=tuple(expectation(place, version) for place, version in self.expect),
        )


@dataclass(slots=True)
class Workload:
    """Builds requests over some places; knows which events a later link may target.

    Event ids and place ids live in a namespace ``ns``, so that several logs can share one
    database; within one namespace ids are ordered by their draw order, so a log behaves
    the same under any namespace (the projection breaks ties by event id).
    """

    pick: Pick
    ns: int
    places: tuple[str, ...]
    count: int = 0
    stored: dict[str, list[Event]] = field(default_factory=dict)
    """Per place: events of accepted requests, possible link targets."""
    pending: list[Event] = field(default_factory=list)
    """Events of accepted requests that later requests must not link to yet."""
    accepted: list[Req] = field(default_factory=list)

    @classmethod
    def of(cls, pick: Pick, ns: int, places: int) -> Workload:
        names = tuple(f"t{ns}-p{k}" for k in range(places))
        return cls(pick, ns, names, stored={p: [] for p in names})

    def next_id(self) -> uuid.UUID:
        self.count += 1
        return uuid.UUID(int=(self.ns << 32) | self.count)

    def when(self) -> dict[str, Any]:
        """A valid time in June 2017, drawn regardless of log order (so often backdated)."""
        day = self.pick.number(1, 24)
        shape = self.pick.number(0, 9)
        if shape == 0:
            return {"on": f"2017-06-{day:02d}", "precision": "week"}
        if shape == 1:
            hour = self.pick.number(0, 23)
            return {"on": f"2017-06-{day:02d}T{hour:02d}:30:00+03:00", "precision": "hour"}
        if shape == 2:
            return {"on": f"2017-06-{day:02d}", "until": f"2017-06-{day + 3:02d}"}
        return {"on": f"2017-06-{day:02d}"}

    def fresh(self, place: str, targets: Sequence[Event]) -> Event:
        """A new event about ``place``: a claim, a status, noise, or a statement on a target."""
        kw: dict[str, Any] = {"id": self.next_id(), "place": place, **self.when()}
        if targets and self.pick.number(0, 2) == 0:
            target = self.pick.one(targets)
            relation = self.pick.one(("denies", "confirms", "retracts", "retracts", "denies"))
            kw.pop("until", None)
            if relation == "retracts":
                return retraction(target, **kw)
            by = self.pick.one(SOURCES)
            if relation == "confirms":
                return confirmation(target, by, **kw)
            return denial(target, by, **kw)
        kind = self.pick.one(KINDS)
        kw["by"] = self.pick.one(SOURCES)
        kw["credibility"] = self.pick.number(1, 6)
        kw["hedge"] = self.pick.one(("confirmed", "reported", "claimed", "alleged"))
        if kind == "casualties":
            return casualties(self.pick.number(0, 40), **kw)
        opponent = self.pick.one((None, None, *SIDES))
        return event(kind, self.pick.one(SIDES), opponent=opponent, **kw)

    def new(self, *, share: bool = True) -> Req:
        """An acceptable request of 1-3 events (a batch may span places).

        ``share=False``: later requests may not link to its events until :meth:`publish`
        (for requests racing each other, whose order of commit is not known).
        """
        events: list[Event] = []
        for _ in range(self.pick.number(1, 3)):
            place = self.pick.one(self.places)
            targets = [*self.stored[place], *(e for e in events if e.place.id == place)]
            events.append(self.fresh(place, targets))
        expect: tuple[tuple[str, int | str], ...] = ()
        first = events[0].place.id
        if self.pick.number(0, 4) == 0 and (share or self.stored[first]):
            # (A racing request cannot know whether the place is still new.)
            expect = ((first, "any-existing" if self.stored[first] else "none"),)
        if share:
            for e in events:
                self.stored[e.place.id].append(e)
        else:
            self.pending.extend(events)
        req = Req(tuple(events), "new", expect)
        self.accepted.append(req)
        return req

    def publish(self) -> None:
        """Racing requests have committed: their events may now be linked to."""
        for e in self.pending:
            self.stored[e.place.id].append(e)
        self.pending.clear()

    def refused(self) -> Req:
        """A request the store must refuse whole (422 or 409), leaving no trace."""
        place = self.pick.one(self.places)
        known = self.stored[place]
        shape = self.pick.number(0, 3)
        good = self.fresh(place, known)
        if shape == 0 or not known:
            # A link to an event that is not in the log.
            ghost = statement(link(self.next_id(), "denies"), id=self.next_id(), place=place)
            return Req((good, ghost), "refused")
        if shape == 1:
            return Req((good,), "refused", ((place, 10_000),))
        target = self.pick.one(known)
        if shape == 2:
            # A retraction by another source than the one that made the event.
            mine = source_key(target.source.name)
            other = next(s for s in SOURCES if source_key(s.name) != mine)
            bad = statement(link(target, "retracts"), id=self.next_id(), place=place, by=other)
            return Req((good, bad), "refused")
        # Part of the batch is already stored.
        return Req((target, good), "refused")

    def duplicate(self) -> Req:
        """An exact resend of an accepted request: its original receipts, nothing written."""
        return Req(self.pick.one(self.accepted).events, "duplicate")

    def group(self, size: int) -> list[Req]:
        """A group commit's requests: mostly new, some refused, some resent."""
        group: list[Req] = []
        for _ in range(size):
            roll = self.pick.number(0, 9)
            if roll == 9:
                group.append(self.refused())
            elif roll == 8 and self.accepted:
                group.append(self.duplicate())
            else:
                group.append(self.new())
        return group


@st.composite
def groups(draw: st.DrawFn, ns: int) -> tuple[tuple[str, ...], list[list[Req]]]:
    """A log of 4-10 group commits over 2-3 places of namespace ``ns``."""
    work = Workload.of(DrawPick(draw), ns, draw(st.integers(2, 3)))
    commits = [work.group(draw(st.integers(1, 4))) for _ in range(draw(st.integers(4, 10)))]
    return work.places, commits


# --------------------------------------------------------------------------------------------
# The oracle and the checks


@dataclass(slots=True)
class Oracle:
    """What the receipts say the log holds, and the rows it must project to."""

    events: list[tuple[int, Event]] = field(default_factory=list)
    commits: list[int] = field(default_factory=list)

    def take(
        self, group: Sequence[Req], outcomes: Sequence[list[Receipt] | FrontlineError]
    ) -> set[int]:
        """Check each outcome against what its request must get; note what was stored.

        Returns the commit positions the group's new events got.
        """
        assert len(outcomes) == len(group)
        made: set[int] = set()
        for req, outcome in zip(group, outcomes, strict=True):
            if req.kind == "refused":
                assert isinstance(outcome, FrontlineError), f"accepted: {req}"
                continue
            assert not isinstance(outcome, FrontlineError), f"{req.kind} request: {outcome!r}"
            assert [r.id for r in outcome] == [e.id for e in req.events]
            assert all(r.duplicate == (req.kind == "duplicate") for r in outcome)
            if req.kind == "new":
                stored = zip(outcome, req.events, strict=True)
                self.events.extend((r.position, e) for r, e in stored)
                made.update(r.commit_position for r in outcome)
        self.commits = sorted(set(self.commits) | made)
        return made

    async def append(self, store: EventStore, group: Sequence[Req]) -> int | None:
        """Append a group in one ``append_group``; the commit it made, if any."""
        made = self.take(group, await store.append_group([r.request() for r in group]))
        assert len(made) <= 1, f"one group, several commits: {made}"
        return made.pop() if made else None

    def rows(self, places: Sequence[str], position: int) -> list[Row]:
        """The rows of the projection of each place's events up to ``position``."""
        expected: list[Row] = []
        for place in sorted(places):
            events = [e for p, e in self.events if p <= position and e.place.id == place]
            for r in rows_of(place, project_place(events, CREDIBILITY_V2)):
                expected.append((
                    r.place_id, r.valid_from, r.valid_to, r.controller, r.status, r.status_by,
                    r.disputed, r.confidence, r.basis, r.body,
                ))  # fmt: skip
        return expected


def id_of(e: Event) -> uuid.UUID:
    """An event's id (the builders always give one)."""
    assert e.id is not None
    return e.id


async def known_rows(conn: Conn, places: Sequence[str], position: int) -> list[Row]:
    """The rows of ``segments`` known at ``position``, body as bytes."""
    rows = await conn.fetch(KNOWN_AT, list(places), position)
    return [(*tuple(r)[:-1], r["body"].encode()) for r in rows]


async def check_known(conn: Conn, oracle: Oracle, places: Sequence[str], position: int) -> None:
    """The rows known at ``position`` are the projection of the events up to it."""
    assert await known_rows(conn, places, position) == oracle.rows(places, position), (
        f"rows known at position {position}"
    )


async def check_history(conn: Conn, oracle: Oracle, places: Sequence[str]) -> None:
    """Every commit still reads as it did; known ranges only ever start or end at commits
    and never overlap for one (place, valid_from)."""
    for commit in oracle.commits:
        await check_known(conn, oracle, places, commit)
    assert await conn.fetch(OVERLAPS, list(places)) == []
    bounds = {r["p"] for r in await conn.fetch(KNOWN_BOUNDS, list(places))}
    assert bounds <= set(oracle.commits)


async def snapshot(conn: Conn) -> list[Row]:
    """Every row of ``segments``, every column, in a total order."""
    return [tuple(r) for r in await conn.fetch(SNAPSHOT)]


class FailingProjector(TimelineProjector):
    """A projector whose ``apply`` writes its rows, then fails inside the append transaction
    (a real PostgreSQL error) for commits that touch one of the ``failing`` places; with
    ``once``, the first failure disarms it."""

    def __init__(self, *, once: bool) -> None:
        super().__init__()
        self.failing: set[str] = set()
        self.once = once
        self.failures = 0

    async def apply(
        self,
        conn: Connection,
        versions: Mapping[str, int],
        commit_position: int,
        added: Mapping[str, Sequence[Event]],
        sides: tuple[SideRegistry, SideRegistry] = (EMPTY, EMPTY),
        size: int | None = None,
    ) -> None:
        await super().apply(conn, versions, commit_position, added, sides, size)
        hit = self.failing.intersection(versions)
        if hit:
            self.failures += 1
            if self.once:
                self.failing.clear()
            await conn.execute("SELECT 1 / 0")


@contextlib.asynccontextmanager
async def committers(*stores: EventStore) -> AsyncIterator[list[GroupCommitter]]:
    """A started group committer per store, stopped after."""
    started = [GroupCommitter(s, group_max=16) for s in stores]
    for c in started:
        c.start()
    try:
        yield started
    finally:
        for c in started:
            await c.stop()


Writer = Callable[[AppendRequest], Awaitable[list[Receipt]]]


def alone(store: EventStore) -> Writer:
    """Append one request in its own ``append_group`` (as the NDJSON import does, beside
    the group committer of the same process)."""

    async def write(request: AppendRequest) -> list[Receipt]:
        (outcome,) = await store.append_group([request])
        if isinstance(outcome, FrontlineError):
            raise outcome
        return outcome

    return write


async def race(oracle: Oracle, work: Workload, writers: Sequence[Writer], n: int) -> None:
    """``n`` new requests appended concurrently through ``writers``, in whatever groups and
    commit order they make of them."""
    reqs = [work.new(share=False) for _ in range(n)]
    outcomes = await asyncio.gather(
        *(writers[i % len(writers)](r.request()) for i, r in enumerate(reqs))
    )
    oracle.take(reqs, outcomes)
    work.publish()


async def refuse_at_commit(conn: Conn, *events: Event) -> None:
    """Make every transaction that stores one of ``events`` fail at COMMIT: a deferred
    constraint trigger (as the owner), so the failure comes after the projector's ``apply``
    returned and after everything was written (a constraint the planner missed)."""
    ids = ", ".join(f"'{id_of(e)}'" for e in events)
    await conn.execute(
        f"""
        CREATE OR REPLACE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.id IN ({ids}) THEN
            RAISE EXCEPTION 'event % refused at commit', NEW.id;
          END IF;
          RETURN NULL;
        END $$;
        DROP TRIGGER IF EXISTS refuse_at_commit ON events;
        CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON events
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();
        """
    )


NAMESPACES = itertools.count(1)


# --------------------------------------------------------------------------------------------
# a. The known axis is exact to the commit


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_known_axis_is_exact_to_the_commit(
    pool: asyncpg.Pool, owner: Conn, data: st.DataObject
) -> None:
    """After every group commit ending at position p, the rows known at p are exactly the
    projection of each place's events up to p, and after the whole log every earlier commit
    still reads the same (random logs over 2-3 places: claims, statuses, casualties,
    denials, confirmations, retractions, backdated valid times, batches, refused and
    resent requests; one database, a fresh place namespace and projector per example)."""
    ns = next(NAMESPACES)
    places, log = data.draw(groups(ns))
    store = EventStore(pool, TimelineProjector())
    oracle = Oracle()
    for group in log:
        commit = await oracle.append(store, group)
        if commit is not None:
            await check_known(owner, oracle, places, commit)
    await check_history(owner, oracle, places)


# --------------------------------------------------------------------------------------------
# b. Rebuild equals incremental


async def test_rebuild_reproduces_the_incremental_rows_bit_for_bit(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """Several hundred events over six places, appended in many group commits (with refused
    and resent requests, racing group committers, and one group that failed inside its
    transaction and was retried request by request), give rows that a full rebuild
    reproduces exactly, every column; the projection position is the head before and after,
    and appends after the rebuild stay exact."""
    projector = FailingProjector(once=True)
    store = EventStore(pool, projector)
    work = Workload.of(RandomPick(random.Random(20170603)), 1, 6)
    oracle = Oracle()
    for round_ in range(50):
        group = work.group(work.pick.number(1, 5))
        if round_ != 20:
            await oracle.append(store, group)
            continue
        projector.failing.update(work.places)
        group.append(work.new())
        assert len(oracle.take(group, await store.append_group([r.request() for r in group]))) > 1
    assert projector.failures == 1
    async with committers(store, EventStore(pool, TimelineProjector())) as started:
        for _ in range(3):
            await race(oracle, work, [c.append for c in started], 20)
    assert len(oracle.events) >= 300
    await check_history(owner, oracle, work.places)

    head, _ = await store.head()
    before = await snapshot(owner)
    assert (await projection_state(pool)).position == head
    written = await TimelineProjector().rebuild(Connector.of(settings))
    assert await snapshot(owner) == before
    assert written.rows == len(before)
    assert written.position == head
    assert (await projection_state(pool)).position == head

    await projector.rebuild(Connector.of(settings))
    assert await snapshot(owner) == before
    for _ in range(5):
        commit = await oracle.append(store, [work.new(), *work.group(2)])
        assert commit is not None
        await check_known(owner, oracle, work.places, commit)
    await check_history(owner, oracle, work.places)


# --------------------------------------------------------------------------------------------
# c. The cache never makes a difference


async def test_a_second_process_and_a_dropped_cache_keep_the_rows_exact(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """Two stores, each with its own pool and projector (as two API processes), append to
    the same places in turn and then concurrently; one projector's cache is dropped now and
    then, the other's holds only six events (constant eviction). Every commit stays exact."""
    other_pool = await create_pool(settings)
    try:
        first, second = TimelineProjector(), TimelineProjector(cache_events=6)
        stores = (EventStore(pool, first), EventStore(other_pool, second))
        work = Workload.of(RandomPick(random.Random(1917)), 2, 4)
        oracle = Oracle()
        for round_ in range(40):
            if round_ % 7 == 6:
                first.forget()
            commit = await oracle.append(stores[round_ % 3 % 2], work.group(work.pick.number(1, 3)))
            if commit is not None:
                await check_known(owner, oracle, work.places, commit)
        async with committers(*stores) as started:
            writers = [*(c.append for c in started), *(alone(s) for s in stores)]
            for _ in range(3):
                await race(oracle, work, writers, 24)
        for round_ in range(6):
            commit = await oracle.append(stores[round_ % 2], [*work.group(1), work.new()])
            assert commit is not None
            await check_known(owner, oracle, work.places, commit)
        await check_history(owner, oracle, work.places)
    finally:
        await other_pool.close()


# --------------------------------------------------------------------------------------------
# d. A rolled-back append leaves nothing behind


async def test_a_rolled_back_append_leaves_no_rows_and_no_stale_cache(
    pool: asyncpg.Pool, owner: Conn
) -> None:
    """An append that fails inside its transaction after the projector wrote its rows, or
    at COMMIT after the projector's ``apply`` returned the cache entry holding the new
    events, leaves the rows, the projection position and the head as they were; the next
    append reuses the positions and the place version, and its rows are the projection of
    what was really stored, not of the rolled-back events (the cache kept none of them)."""
    projector = FailingProjector(once=True)
    store = EventStore(pool, projector)
    oracle = Oracle()
    place = "sy-maskanah"
    held = [control(GOV, on=f"2017-06-0{d}", place=place, by=SOURCES[0]) for d in (1, 2, 3)]
    for e in held:
        assert await oracle.append(store, [Req((e,), "new")]) is not None
    await check_known(owner, oracle, [place], oracle.commits[-1])
    rows, state, head = await snapshot(owner), await projection_state(pool), await store.head()

    amaq = source("Amaq", "A")
    in_apply = capture(ISIS, on="2017-06-02", place=place, by=amaq, credibility=1)
    at_commit = capture(SDF, on="2017-06-03", place=place, by=amaq, credibility=1)
    projector.failing.add(place)
    with pytest.raises(asyncpg.DivisionByZeroError):
        await store.append_group([Req((in_apply,), "new").request()])
    assert projector.failures == 1
    await refuse_at_commit(owner, at_commit)
    with pytest.raises(asyncpg.RaiseError, match="refused at commit"):
        await store.append_group([Req((at_commit,), "new").request()])
    for lost in (in_apply, at_commit):
        assert await store.get(id_of(lost)) is None
    assert await snapshot(owner) == rows
    assert await projection_state(pool) == state
    assert await store.head() == head

    later = casualties(12, on="2017-06-04", place=place)
    commit = await oracle.append(store, [Req((later,), "new")])
    assert commit == head[0] + 1
    await check_history(owner, oracle, [place])
    expected = [row[-1] for row in oracle.rows([place], commit)]
    for lost in (in_apply, at_commit):
        stale = rows_of(place, project_place([*held, lost], CREDIBILITY_V2))
        assert [r.body for r in stale] != expected, "a stale cache would not show"


async def test_a_group_failing_inside_its_transaction_is_redone_request_by_request(
    pool: asyncpg.Pool, owner: Conn
) -> None:
    """A group whose transaction fails once after the projector wrote rows for all of it is
    retried one request at a time: each request gets the outcome it would have alone, and
    the rows known at every commit are exact."""
    projector = FailingProjector(once=True)
    store = EventStore(pool, projector)
    work = Workload.of(RandomPick(random.Random(7)), 3, 3)
    oracle = Oracle()
    for _ in range(4):
        await oracle.append(store, [work.new()])
    group = [work.new(), work.refused(), work.duplicate(), work.new(), work.new()]
    projector.failing.update(work.places)
    made = oracle.take(group, await store.append_group([r.request() for r in group]))
    assert projector.failures == 1
    assert len(made) == 3  # one commit per new request
    await check_history(owner, oracle, work.places)
    head, _ = await store.head()
    assert (await projection_state(pool)).position == head == max(made)


async def test_a_request_that_keeps_failing_in_the_transaction_fails_no_other_request(
    pool: asyncpg.Pool, owner: Conn
) -> None:
    """``append_group`` promises that one request's trouble never fails the others: when
    the group's transaction fails it is redone one request at a time. A request whose
    transaction fails every time (here at COMMIT, by a constraint the planner cannot see)
    must then fail alone: the requests after it in the group are still appended and
    projected, and the outcomes of those before it are returned."""
    store = EventStore(pool, TimelineProjector())
    oracle = Oracle()
    first, poisoned, last = (control(GOV, place=f"t4-{k}") for k in "abc")
    await refuse_at_commit(owner, poisoned)
    group = [Req((e,), "new") for e in (first, poisoned, last)]
    outcomes: list[list[Receipt] | FrontlineError] | None = None
    with contextlib.suppress(asyncpg.RaiseError):
        outcomes = await store.append_group([r.request() for r in group])
    assert await store.get(id_of(first)) is not None
    assert await store.get(id_of(poisoned)) is None
    assert await store.get(id_of(last)) is not None, (
        "the request after the failing one was never appended"
    )
    assert outcomes is not None, "append_group raised: the receipts of `first` are lost"
    oracle.take([group[0], group[2]], [outcomes[0], outcomes[2]])
    await check_history(owner, oracle, ["t4-a", "t4-c"])
