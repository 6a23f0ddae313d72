"""The rebuild beside a serving store (issue 12), on PostgreSQL.

A rebuild folds the log in worker processes into ``segments_next`` while appends go on
through the same store, catches up with them, and swaps the tables under the head lock
(``service/projections/rebuild.py``, migration 0005). The oracle is the same as the
projection store's tests (``test_projection_store.py``): the rows known at every commit are
the pure projection of the events up to it. A :class:`Gate` holds a rebuild at chosen stages
so that appends land in each of them.
"""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from typing import Any, Final

import asyncpg
import pytest

from service.domain.errors import RebuildUnderWay
from service.domain.policy import SERVED
from service.projections.rebuild import KEEP_FROM, RebuildProgress
from service.projections.timelines import TimelineProjector, projection_state, stale_because
from service.settings import Settings
from service.store.db import Connector
from service.store.events import EventStore
from service.store.queries import SQL
from tests.integration.helpers import Conn
from tests.integration.test_projection_store import (
    ALL_COLUMNS,
    SOURCES,
    Oracle,
    RandomPick,
    Req,
    Workload,
    check_history,
    check_known,
    snapshot,
)
from tests.unit.builders import GOV, control

STAGES: Final = ("folding", "catching-up", "swapping")
NEXT: Final = f"SELECT {ALL_COLUMNS} FROM segments_next ORDER BY place_id, valid_from, known_from"


class Gate:
    """An ``on_rebuild`` observer that holds a rebuild at some stages until released."""

    def __init__(self, *stages: str) -> None:
        self.reached = {stage: asyncio.Event() for stage in stages}
        self.go = {stage: asyncio.Event() for stage in stages}
        self.seen: list[str] = []

    async def __call__(self, progress: RebuildProgress) -> None:
        self.seen.append(progress.stage)
        if progress.stage in self.reached:
            self.reached[progress.stage].set()
            await self.go[progress.stage].wait()

    async def at(self, stage: str) -> None:
        """Wait until the rebuild is held at ``stage``."""
        await asyncio.wait_for(self.reached[stage].wait(), 60)

    def release(self, stage: str) -> None:
        """Let the rebuild go on from ``stage``."""
        self.go[stage].set()

    def release_all(self) -> None:
        """Let the rebuild go on from every stage (a test that failed half-way)."""
        for go in self.go.values():
            go.set()


async def _append_some(
    oracle: Oracle, store: EventStore, work: Workload, owner: Conn, count: int
) -> None:
    """``count`` group commits through the store; the rows stay exact after each."""
    for _ in range(count):
        commit = await oracle.append(store, work.group(work.pick.number(1, 3)))
        if commit is not None:
            await check_known(owner, oracle, work.places, commit)


@pytest.mark.parametrize("fold_cache", [1_000_000, 4], ids=["folds-kept", "folds-dropped"])
async def test_appends_during_a_rebuild_are_in_its_rows_and_equal_a_rebuild_alone(
    settings: Settings, pool: asyncpg.Pool, owner: Conn, fold_cache: int
) -> None:
    """A rebuild held at each of its stages (after its snapshot, after folding, before the
    swap) while group commits go on through the same projector: every commit is projected
    at once into the served rows (the rebuild holds no lock the appends need), readers see
    the old rows until the swap, and the swapped-in rows are exact at every commit of the
    log (appends made during the rebuild included, caught up from their whole log and then
    from the folds the workers keep, or from their whole log each time when the workers may
    keep no fold) and the same rows, every column, as a rebuild done with nothing appended
    during it."""
    gate = Gate(*STAGES)
    connector = Connector.of(settings)
    projector = TimelineProjector(rebuild_workers=2, on_rebuild=gate, cache_events=fold_cache)
    store = EventStore(pool, projector)
    work = Workload.of(RandomPick(random.Random(20261206)), 1, 9)
    oracle = Oracle()
    await _append_some(oracle, store, work, owner, 40)
    # A row only the old table has: readers must see it until the swap, and never after.
    # (A closed one, so that the checks of the commits made meanwhile do not read it.)
    marked = await owner.fetchval(
        "UPDATE segments SET confidence = 99 WHERE ctid = "
        "(SELECT min(ctid) FROM segments WHERE known_to IS NOT NULL) RETURNING place_id"
    )
    assert marked is not None

    task = projector.start_rebuild(connector)
    for stage in STAGES:
        await gate.at(stage)
        assert projector.rebuilding is not None
        assert projector.rebuilding.stage == stage
        await _append_some(oracle, store, work, owner, 6)
        assert await owner.fetchval("SELECT count(*) FROM segments WHERE confidence = 99") == 1
        gate.release(stage)
    report = await asyncio.wait_for(task, 120)

    head, _ = await store.head()
    assert report.position == head
    assert (await projection_state(pool)).position == head
    assert report.rounds >= 2  # at least one round before the lock and the one under it
    assert report.caught_up_cold > 0  # places appended to during the rebuild: whole log once
    if fold_cache > 4:
        assert report.caught_up_warm > 0  # and again: from the folds the workers kept
    else:
        assert report.caught_up_warm == 0  # no fold kept: from the whole log each time
    assert 0 < report.locked_seconds < report.seconds
    assert await owner.fetchval("SELECT count(*) FROM segments WHERE confidence = 99") == 0
    await check_history(owner, oracle, work.places)
    rebuilt = await snapshot(owner)
    assert report.rows == len(rebuilt)
    assert await owner.fetch(NEXT) == [], "the old rows are let go after the swap"
    assert projector.cached_places == 0, "the fold cache is forgotten at the swap"

    alone = await TimelineProjector(rebuild_workers=1).rebuild(connector)
    assert await snapshot(owner) == rebuilt
    assert (alone.rows, alone.position, alone.rounds) == (report.rows, head, 0)
    # And the log goes on: appends after the swap are projected on the rebuilt rows.
    await _append_some(oracle, store, work, owner, 5)
    await check_history(owner, oracle, work.places)


async def test_a_busy_place_is_caught_up_from_the_fold_kept_by_the_first_pass(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """A place with many events keeps its fold from the first pass, so appends to it during
    the rebuild are folded on top of it (not from its whole log again), by the worker that
    holds it; the rows stay exact at every commit."""
    gate = Gate("catching-up")
    projector = TimelineProjector(rebuild_workers=2, on_rebuild=gate)
    store = EventStore(pool, projector)
    work = Workload.of(RandomPick(random.Random(17)), 7, 1)
    oracle = Oracle()
    while len(oracle.events) < KEEP_FROM + 5:
        await oracle.append(store, [work.new()])
    task = projector.start_rebuild(Connector.of(settings))
    await gate.at("catching-up")
    await _append_some(oracle, store, work, owner, 4)
    gate.release("catching-up")
    report = await asyncio.wait_for(task, 120)
    assert (report.caught_up_cold, report.caught_up_warm) == (0, report.rounds)
    await check_history(owner, oracle, work.places)


async def test_one_rebuild_at_a_time_in_the_process_and_in_the_database(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """While a rebuild runs, a second one in the same process is refused at once, and one
    from another process (another projector: the CLI, another API process) fails with
    RebuildUnderWay before touching anything; once it is done, a rebuild runs again."""
    gate = Gate("folding")
    connector = Connector.of(settings)
    projector = TimelineProjector(on_rebuild=gate)
    store = EventStore(pool, projector)
    work = Workload.of(RandomPick(random.Random(3)), 2, 3)
    await _append_some(Oracle(), store, work, owner, 5)
    before = await snapshot(owner)

    task = projector.start_rebuild(connector)
    await gate.at("folding")
    with pytest.raises(RebuildUnderWay, match="folding the log up to position"):
        _ = projector.start_rebuild(connector)
    with pytest.raises(RebuildUnderWay, match="another process"):
        await TimelineProjector().rebuild(connector)
    gate.release("folding")
    await task
    assert await snapshot(owner) == before
    assert (await TimelineProjector().rebuild(connector)).rows == len(before)


async def test_a_failed_rebuild_leaves_the_served_rows_and_releases_its_lock(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """A rebuild whose workers cannot fold (here: the policy it is given is unknown to
    them) fails with RebuildFailed; ``segments`` and the projection state are as they
    were, and the next rebuild is not refused as under way."""
    store = EventStore(pool, TimelineProjector())
    work = Workload.of(RandomPick(random.Random(5)), 3, 2)
    await _append_some(Oracle(), store, work, owner, 4)
    before, state = await snapshot(owner), await projection_state(pool)
    unknown = TimelineProjector(policy=_renamed(SERVED, "credibility-test"))
    with pytest.raises(Exception, match="no policy 'credibility-test'"):
        await unknown.rebuild(Connector.of(settings))
    assert await snapshot(owner) == before
    assert await projection_state(pool) == state
    assert (await TimelineProjector().rebuild(Connector.of(settings))).rows == len(before)


def _renamed(policy: Any, name: str) -> Any:
    """The same weights under another name (a policy the workers cannot look up)."""
    import dataclasses

    return dataclasses.replace(policy, name=name)


async def test_appends_on_stale_rows_write_nothing_until_a_rebuild(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """Rows of another policy are stale: an append leaves them, and the projection's
    position, as they are (no row of the served policy among another's), keeps no fold in
    the cache, and a rebuild then gives the served policy's rows of the whole log. The
    same holds for rows behind the log (appended to with projections off)."""
    projector = TimelineProjector()
    store = EventStore(pool, projector)
    work = Workload.of(RandomPick(random.Random(11)), 4, 3)
    oracle = Oracle()
    await _append_some(oracle, store, work, owner, 6)
    await owner.execute("UPDATE projection_state SET policy = 'credibility-v0'")
    rows, state = await snapshot(owner), await projection_state(pool)
    assert await stale_because(pool) is not None
    for _ in range(3):
        assert await oracle.append(store, [work.new()]) is not None
    assert await snapshot(owner) == rows
    assert await projection_state(pool) == state
    assert projector.cached_places == 0

    await projector.rebuild(Connector.of(settings))
    assert (await projection_state(pool)).follows(SERVED)
    await check_history(owner, oracle, work.places)
    assert await stale_because(pool) is None

    # Behind the log: a store without projections appends, the projecting one then stays out.
    assert await oracle.append(EventStore(pool), [work.new()]) is not None
    rows = await snapshot(owner)
    assert await oracle.append(store, [work.new()]) is not None
    assert await snapshot(owner) == rows
    assert "stop at position" in (await stale_because(pool) or "")
    await projector.rebuild(Connector.of(settings))
    await check_history(owner, oracle, work.places)


async def test_the_first_commit_adopts_the_served_policy(pool: asyncpg.Pool, owner: Conn) -> None:
    """A projection at position 0 holds no row, whatever policy it names (a fresh database
    migrated before the served policy changed): the first commit is projected and the
    state takes the served policy."""
    await owner.execute("UPDATE projection_state SET policy = 'credibility-v0'")
    store = EventStore(pool, TimelineProjector())
    oracle = Oracle()
    await _append_some(oracle, store, Workload.of(RandomPick(random.Random(8)), 6, 2), owner, 3)
    state = await projection_state(pool)
    assert state.follows(SERVED)
    assert state.position == (await store.head())[0]
    await check_history(owner, oracle, ["t6-p0", "t6-p1"])


async def test_an_empty_log_adopts_the_served_policy_without_a_rebuild(
    pool: asyncpg.Pool, owner: Conn
) -> None:
    """With nothing in the log there is nothing to rebuild: a projection state naming
    another policy is moved to the served one on the spot."""
    await owner.execute("UPDATE projection_state SET policy = 'credibility-v0'")
    assert await stale_because(pool) is None
    assert (await projection_state(pool)).follows(SERVED)


# --------------------------------------------------------------------------------------------
# The swap itself: privileges and prepared statements


async def test_statements_prepared_before_the_swap_read_the_new_table(
    pool: asyncpg.Pool, owner: Conn
) -> None:
    """asyncpg prepares every statement once per connection and keeps it; after the swap
    (another session, as the service role, under the head lock), a statement prepared
    before it on a pooled connection reads the table that now has the name, and so do
    explicitly prepared ones."""
    body = '{"marker": "%s"}'
    columns = "place_id, valid_from, known_from, controller, status, disputed, confidence, basis"
    values = "'sy-x', '2017-06-01', 1, NULL, 'unknown', false, 0, 'claimed'"
    await owner.execute(f"INSERT INTO segments ({columns}, body) VALUES ({values}, $1)", body % 1)
    await owner.execute(
        f"INSERT INTO segments_next ({columns}, body) VALUES ({values}, $1)", body % 2
    )
    query = SQL["read_timeline"]
    async with pool.acquire() as conn:
        assert [r["body"] for r in await conn.fetch(query, "sy-x", 1)] == [body % 1]
        prepared = await conn.prepare(query)
        assert [r["body"] for r in await prepared.fetch("sy-x", 1)] == [body % 1]
        async with pool.acquire() as other, other.transaction():
            await other.fetchrow(SQL["lock_head"])
            await other.execute(SQL["swap_segments"], 0, SERVED.name, SERVED.version)
        assert [r["body"] for r in await conn.fetch(query, "sy-x", 1)] == [body % 2]
        assert [r["body"] for r in await prepared.fetch("sy-x", 1)] == [body % 2]
    indexes = await owner.fetch(
        "SELECT tablename, indexname FROM pg_indexes WHERE tablename LIKE 'segments%' "
        "ORDER BY indexname"
    )
    assert [(r["tablename"], r["indexname"]) for r in indexes] == [
        ("segments", "segments_current"),
        ("segments_next", "segments_next_current"),
        ("segments_next", "segments_next_place_bitemporal"),
        ("segments", "segments_place_bitemporal"),
    ]


async def test_only_the_service_role_may_clear_or_swap_and_it_owns_neither_table(
    pool: asyncpg.Pool, owner: Conn, settings: Settings
) -> None:
    """The twin and its functions follow least privilege: the service role owns neither
    table and cannot TRUNCATE or rename them itself, but may call the three functions
    (which run as their owner); a role without grants (as PUBLIC) may call none of them.
    The swap refuses a twin that was emptied and not indexed again (it would serve without
    its indexes)."""
    tables = await owner.fetch(
        "SELECT tablename, tableowner FROM pg_tables WHERE tablename LIKE 'segments%'"
    )
    assert {r["tablename"] for r in tables} == {"segments", "segments_next"}
    assert all(r["tableowner"] != settings.db_role for r in tables)
    async with pool.acquire() as conn:
        for statement in ("TRUNCATE segments_next", "ALTER TABLE segments RENAME TO s2"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        await conn.execute(SQL["clear_segments_next"])
        with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="not indexed"):
            async with conn.transaction():
                await conn.execute(SQL["swap_segments"], 0, SERVED.name, SERVED.version)
        await conn.execute(SQL["index_segments_next"])
    definers = await owner.fetch(
        "SELECT proname, prosecdef, proconfig FROM pg_proc WHERE proname LIKE 'frontline_%seg%'"
    )
    assert {r["proname"]: r["prosecdef"] for r in definers} == {
        "frontline_clear_segments_next": True,
        "frontline_index_segments_next": True,
        "frontline_swap_segments": True,
    }
    assert all("search_path=pg_catalog, public, pg_temp" in r["proconfig"] for r in definers)
    await owner.execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'frontline_stranger') "
        "THEN CREATE ROLE frontline_stranger NOLOGIN; END IF; END $$"
    )
    for function in (
        "frontline_clear_segments_next()",
        "frontline_index_segments_next()",
        "frontline_swap_segments(bigint, text, integer)",
    ):
        assert not await owner.fetchval(
            "SELECT has_function_privilege('frontline_stranger', $1, 'EXECUTE')", function
        )
        assert await owner.fetchval(
            "SELECT has_function_privilege($2, $1, 'EXECUTE')", function, settings.db_role
        )


# --------------------------------------------------------------------------------------------
# The fold cache's eviction costs what a commit touched


class _NoScan(OrderedDict[str, Any]):
    """A cache that fails the test if anything walks it whole."""

    def items(self) -> Any:
        raise AssertionError("the eviction walked the whole cache")

    def values(self) -> Any:
        raise AssertionError("the eviction walked the whole cache")

    def __iter__(self) -> Any:
        raise AssertionError("the eviction walked the whole cache")


async def test_eviction_looks_only_at_the_places_a_commit_touched(
    pool: asyncpg.Pool, owner: Conn
) -> None:
    """Regression test (``_evict`` walked every cached place on each commit: 21 % of a
    POST's time with a large cache): commits through a projector whose cache cannot be
    walked still drop the least recently used places when the folds hold too many events,
    drop a place larger than the whole cache once a commit touches it, and stay exact."""
    projector = TimelineProjector(cache_events=10)
    projector._cache = _NoScan()
    store = EventStore(pool, projector)
    oracle = Oracle()
    day = iter(range(1, 29))

    async def append(place: str, count: int) -> None:
        events = tuple(
            control(GOV, on=f"2017-06-{next(day):02d}", place=place, by=SOURCES[0])
            for _ in range(count)
        )
        assert await oracle.append(store, [Req(events, "new")]) is not None

    for place in ("t6-a", "t6-b", "t6-c"):
        await append(place, 3)
    assert (projector.cached_places, projector.cached_events) == (3, 9)
    await append("t6-a", 3)  # 12 events held: b, the least recently used, goes
    assert (projector.cached_places, projector.cached_events) == (2, 9)
    await append("t6-c", 8)  # c holds 11, more than the whole cache: it goes
    assert (projector.cached_places, projector.cached_events) == (1, 6)
    await check_history(owner, oracle, ["t6-a", "t6-b", "t6-c"])
