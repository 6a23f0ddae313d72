"""The rebuild beside a serving store, on PostgreSQL.

A rebuild folds the log in worker processes into ``segments_next`` while appends go on
through the same store, catches up with them, and swaps the tables under the head lock
(``service/projections/rebuild.py``, migration 0005). The oracle is the same as the
projection store's tests (``test_projection_store.py``): the rows known at every commit are
the pure projection of the events up to it. A :class:`Gate` holds a rebuild at chosen stages
so that appends land in each of them.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections import OrderedDict
from pathlib import Path
from typing import Any, Final

import asyncpg
import pytest

from service.api.problems import problem_of
from service.domain.policy import SERVED
from service.errors import RebuildFailed, RebuildInterrupted, RebuildUnderWay
from service.projections import rebuild
from service.projections.queries import SQL as PROJECTION_SQL
from service.projections.rebuild import KEEP_FROM, RebuildProgress
from service.projections.timelines import TimelineProjector, projection_state, stale_because
from service.settings import Settings
from service.store.db import Connector
from service.store.events import EventStore
from service.store.queries import SQL as STORE_SQL
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


def _worker_pids() -> list[int]:
    """The rebuild worker processes this test's process started and that still run."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:  # it ended meanwhile
            continue
        # The parent pid is the second field after the command name in parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[1] == me and fields[0] != "Z" and b"service.projections.rebuild" in command:
            found.append(int(entry.name))
    return found


async def _many_events(store: EventStore, owner: Conn, events: int) -> None:
    """About ``events`` events over 24 places in large commits: enough for the fold to be
    cut into several ranges (a range holds at least MIN_RANGE_EVENTS events)."""
    work = Workload.of(RandomPick(random.Random(31)), 9, 24)
    oracle = Oracle()
    while len(oracle.events) < events:
        await oracle.append(store, [work.new() for _ in range(100)])
    await check_known(owner, oracle, work.places, oracle.commits[-1])


async def _waiting_copies(owner: Conn, count: int) -> None:
    """Wait until ``count`` sessions wait for a lock to COPY into the twin."""
    for _ in range(600):
        waiting = await owner.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'COPY%segments_next%'"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} workers never came to COPY into the twin")


@pytest.mark.parametrize("how", ["killed", "failing"])
async def test_a_worker_failing_mid_fold_fails_the_rebuild_cleanly(
    settings: Settings, pool: asyncpg.Pool, owner: Conn, how: str
) -> None:
    """Regression test (the old test failed at the policy check, before any lock or
    worker): one worker of two, mid-fold, is killed (SIGKILL, as the kernel's OOM killer
    does: the rebuild is interrupted, 503 with Retry-After, it may succeed later) or fails
    (PostgreSQL refuses its rows: the rebuild failed, 500); the other finishes its range.
    ``segments`` and the projection state are as they were, the twin is emptied of the rows
    the other worker wrote, no worker process is left, the rebuild's lock is released, and
    the next rebuild runs."""
    store = EventStore(pool, TimelineProjector())
    await _many_events(store, owner, 1_300)
    before, state = await snapshot(owner), await projection_state(pool)
    gate = Gate("folding")
    projector = TimelineProjector(rebuild_workers=2, on_rebuild=gate)
    task = projector.start_rebuild(Connector.of(settings))
    await gate.at("folding")
    if how == "failing":
        # The first place of the log (its range is folded first or second) cannot be written.
        first = await owner.fetchval("SELECT min(id) FROM places")
        await owner.execute(
            "CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.place_id = '{first}' THEN RAISE EXCEPTION 'refused by the test'; END IF; "
            "RETURN NEW; END $$"
        )
        await owner.execute(
            "CREATE TRIGGER refuse_row BEFORE INSERT ON segments_next "
            "FOR EACH ROW EXECUTE FUNCTION refuse_row()"
        )
        gate.release("folding")
        error = await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 60)
    else:
        # Both workers come to COPY their first range and wait: one is killed there.
        blocker = await asyncpg.connect(settings.migrate_database_url)
        try:
            async with blocker.transaction():
                await blocker.execute("LOCK TABLE segments_next IN SHARE MODE")
                gate.release("folding")
                await _waiting_copies(owner, 2)
                workers = _worker_pids()
                assert len(workers) == 2
                os.kill(workers[0], signal.SIGKILL)
                await asyncio.sleep(0.2)
        finally:
            await blocker.close()
        error = await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 60)
    (failure,) = error
    assert isinstance(failure, RebuildFailed), failure
    problem = problem_of(failure, "/v1/admin/rebuild", None)
    if how == "killed":
        assert isinstance(failure, RebuildInterrupted)
        assert "killed (SIGKILL" in str(failure)
        assert (problem.status, failure.retry_after) == (503, 30)
        assert problem.type.endswith("/rebuild-interrupted")
    else:
        assert not isinstance(failure, RebuildInterrupted)
        assert "refused by the test" in str(failure)
        assert problem.status == 500
        assert problem.type.endswith("/rebuild-failed")
    assert _worker_pids() == []
    assert await snapshot(owner) == before
    assert await projection_state(pool) == state
    assert await owner.fetchval("SELECT count(*) FROM segments_next") == 0
    assert not await pool.fetchval(PROJECTION_SQL.read_rebuild_running)
    if how == "failing":
        await owner.execute("DROP TRIGGER refuse_row ON segments_next")
    assert (await TimelineProjector().rebuild(Connector.of(settings))).rows == len(before)
    assert await snapshot(owner) == before


async def test_a_cancelled_rebuild_empties_the_twin_and_releases_its_lock(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """Regression test (a cancelled rebuild left the twin full of its rows until the next
    rebuild): cancelled after its fold (as at shutdown), a rebuild leaves ``segments`` and
    the projection state as they were, its twin empty, no worker process and no lock."""
    store = EventStore(pool, TimelineProjector())
    await _append_some(Oracle(), store, Workload.of(RandomPick(random.Random(6)), 4, 3), owner, 6)
    before, state = await snapshot(owner), await projection_state(pool)
    gate = Gate("catching-up")
    projector = TimelineProjector(rebuild_workers=2, on_rebuild=gate)
    task = projector.start_rebuild(Connector.of(settings))
    await gate.at("catching-up")
    assert await owner.fetchval("SELECT count(*) FROM segments_next") > 0
    await projector.cancel_rebuild()
    assert task.cancelled()
    assert await snapshot(owner) == before
    assert await projection_state(pool) == state
    assert await owner.fetchval("SELECT count(*) FROM segments_next") == 0
    assert _worker_pids() == []
    assert not await pool.fetchval(PROJECTION_SQL.read_rebuild_running)


async def _end_coordinator(owner: Conn) -> None:
    """End the session that holds the rebuild's lock (as idle_session_timeout or an
    operator's pg_terminate_backend would): the lock goes with it. It waits (up to 10 s) for
    the backend to be gone, not only signalled: until it exits, its lock still holds, and a
    rebuild asked meanwhile meets it (a race that failed now and then under load)."""
    ended = await owner.fetchval(
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks WHERE locktype = 'advisory' "
        "AND classid = 1718775662 AND objid = 1919052900 AND objsubid = 2 AND granted"
    )
    assert ended


async def test_a_rebuild_whose_session_ended_while_its_workers_fold_blocks_the_next(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """Regression test (one rebuild at a time held only while the coordinating session
    lived: once the server ended it, another rebuild emptied and refilled the twin while the
    first one's workers still wrote to it, and the swap served duplicate rows): while the
    workers of a rebuild whose session was ended still fold, another rebuild is refused as
    under way; the first fails when it finds its lock gone; the rows served never change,
    and the next rebuild gives the same rows."""
    store = EventStore(pool, TimelineProjector())
    await _many_events(store, owner, 1_300)
    before = await snapshot(owner)
    gate = Gate("folding")
    first = TimelineProjector(rebuild_workers=2, on_rebuild=gate).start_rebuild(
        Connector.of(settings)
    )
    second: asyncio.Task[Any] | None = None
    blocker = await asyncpg.connect(settings.migrate_database_url)
    try:
        await gate.at("folding")
        async with blocker.transaction():
            # The workers come to COPY their first range and wait there.
            await blocker.execute("LOCK TABLE segments_next IN SHARE MODE")
            gate.release("folding")
            await _waiting_copies(owner, 2)
            await _end_coordinator(owner)
            second = asyncio.ensure_future(TimelineProjector(rebuild_workers=1).rebuild(
                Connector.of(settings)
            ))  # fmt: skip
            done, _ = await asyncio.wait({second}, timeout=5)
            assert done, "the second rebuild waits behind the first one's workers"
            with pytest.raises(RebuildUnderWay, match="still write"):
                second.result()
    finally:
        await blocker.close()
        gate.release_all()
        outcomes = await asyncio.wait_for(
            asyncio.gather(first, *([] if second is None else [second]), return_exceptions=True), 60
        )
    assert isinstance(outcomes[0], RebuildFailed), outcomes[0]
    assert "lock" in str(outcomes[0])
    assert _worker_pids() == []
    assert await snapshot(owner) == before
    assert (await TimelineProjector().rebuild(Connector.of(settings))).rows == len(before)
    assert await snapshot(owner) == before


async def test_a_rebuild_whose_session_ended_before_its_workers_started_writes_nothing(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """Regression test (as above): a rebuild whose session was ended before it started its
    workers, while another rebuild took the lock and folded, fails as soon as its workers
    are up, before they write a row; the other's swap serves exact rows, no duplicates."""
    store = EventStore(pool, TimelineProjector())
    work = Workload.of(RandomPick(random.Random(12)), 5, 4)
    oracle = Oracle()
    await _append_some(oracle, store, work, owner, 12)
    before = await snapshot(owner)
    gate, later = Gate("folding"), Gate("swapping")
    first = TimelineProjector(rebuild_workers=2, on_rebuild=gate).start_rebuild(
        Connector.of(settings)
    )
    second = TimelineProjector(rebuild_workers=1, on_rebuild=later)
    try:
        await gate.at("folding")
        await _end_coordinator(owner)
        task = second.start_rebuild(Connector.of(settings))
        await later.at("swapping")
        gate.release("folding")
        with pytest.raises(RebuildFailed, match="lock"):
            await asyncio.wait_for(first, 60)
        later.release("swapping")
        await asyncio.wait_for(task, 60)
    finally:
        gate.release_all()
        later.release_all()
        await asyncio.gather(first, return_exceptions=True)
    assert await snapshot(owner) == before
    await check_history(owner, oracle, work.places)


async def test_a_rebuild_without_connections_for_its_workers_is_interrupted(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """Regression test (a worker's TooManyConnectionsError failed the rebuild with a 500):
    when the server has no connection left for the workers, the rebuild is interrupted
    (503, Retry-After), the served rows untouched and no worker left; with connections
    free again, it runs."""
    store = EventStore(pool, TimelineProjector())
    await _append_some(Oracle(), store, Workload.of(RandomPick(random.Random(7)), 4, 3), owner, 4)
    before = await snapshot(owner)
    # The service role counts the server's sessions as its owner does (those of other roles
    # included), so the worker cap sees the connections really free.
    async with pool.acquire() as conn:
        assert await conn.fetchval(PROJECTION_SQL.read_free_connections) == await owner.fetchval(
            PROJECTION_SQL.read_free_connections
        )
    gate = Gate("folding")
    task = TimelineProjector(rebuild_workers=2, on_rebuild=gate).start_rebuild(
        Connector.of(settings)
    )
    fillers: list[Conn] = []
    try:
        await gate.at("folding")  # its own session is open; its workers are not started
        # Every connection the server has left (those reserved for superusers included:
        # the tests log in as one), taken.
        while True:
            try:
                fillers.append(await asyncpg.connect(settings.migrate_database_url))
            except asyncpg.TooManyConnectionsError:
                break
        gate.release("folding")
        with pytest.raises(RebuildInterrupted, match="TooManyConnectionsError") as raised:
            await asyncio.wait_for(task, 60)
    finally:
        gate.release_all()
        await asyncio.gather(*(f.close() for f in fillers))
        await asyncio.gather(task, return_exceptions=True)
    assert problem_of(raised.value, "/v1/admin/rebuild", None).status == 503
    assert _worker_pids() == []
    assert await snapshot(owner) == before
    assert (await TimelineProjector().rebuild(Connector.of(settings))).rows == len(before)


async def test_the_swap_waits_briefly_for_reads_and_tries_again_without_the_head_lock(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """Regression test (the swap waited up to 2 s for reads in flight while holding the
    head lock, 5 times: appends waited, and every new read queued behind it): while a long
    read holds ``segments``, reads and appends keep answering within a fraction of a
    second as the swap tries, lets go and tries again; once the read ends, the swap
    succeeds and the rows are exact."""
    gate = Gate("swapping")
    projector = TimelineProjector(rebuild_workers=1, on_rebuild=gate)
    store = EventStore(pool, projector)
    work = Workload.of(RandomPick(random.Random(13)), 8, 3)
    oracle = Oracle()
    await _append_some(oracle, store, work, owner, 8)
    task = projector.start_rebuild(Connector.of(settings))
    reader = await asyncpg.connect(settings.migrate_database_url)
    slowest = 0.0
    try:
        await gate.at("swapping")
        async with reader.transaction():
            await reader.fetchval("SELECT count(*) FROM segments")  # held to the end
            gate.release("swapping")
            ends = asyncio.get_running_loop().time() + 3.0
            while asyncio.get_running_loop().time() < ends:
                began = asyncio.get_running_loop().time()
                await pool.fetchval("SELECT count(*) FROM segments")
                assert await oracle.append(store, [work.new()]) is not None
                slowest = max(slowest, asyncio.get_running_loop().time() - began)
                await asyncio.sleep(0.05)
            assert not task.done()
    finally:
        await reader.close()
        gate.release_all()
    report = await asyncio.wait_for(task, 60)
    assert slowest < 0.5, f"a read and an append took {slowest:.2f} s during the swap's tries"
    assert report.position == (await store.head())[0]
    await check_history(owner, oracle, work.places)


async def test_a_swap_that_reads_keep_out_interrupts_the_rebuild(
    settings: Settings, pool: asyncpg.Pool, owner: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression test (after its full fold, a rebuild whose swap a long read kept out
    ended in a 500): when reads hold ``segments`` through every try, the rebuild is
    interrupted (503, Retry-After: it may succeed later), the served rows untouched and
    the twin emptied."""
    monkeypatch.setattr(rebuild, "SWAP_ATTEMPTS", 3)
    store = EventStore(pool, TimelineProjector())
    await _append_some(Oracle(), store, Workload.of(RandomPick(random.Random(9)), 4, 3), owner, 4)
    before = await snapshot(owner)
    reader = await asyncpg.connect(settings.migrate_database_url)
    try:
        async with reader.transaction():
            await reader.fetchval("SELECT count(*) FROM segments")
            with pytest.raises(RebuildInterrupted, match="could not swap") as raised:
                await TimelineProjector(rebuild_workers=1).rebuild(Connector.of(settings))
    finally:
        await reader.close()
    assert problem_of(raised.value, "/v1/admin/rebuild", None).status == 503
    assert await snapshot(owner) == before
    assert await owner.fetchval("SELECT count(*) FROM segments_next") == 0


async def test_a_rebuild_cancelled_after_its_swap_reports_what_it_did(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """Regression test (a rebuild cancelled after its swap, while it stopped its workers,
    as when the service stops just then, told its caller it was interrupted with the served
    rows untouched, and logged that it was cancelled, though its rows were swapped in): the
    caller gets the report, the rows are the rebuilt ones, the twin is emptied of the old
    rows and the lock released."""
    store = EventStore(pool, TimelineProjector())
    work = Workload.of(RandomPick(random.Random(14)), 6, 3)
    oracle = Oracle()
    await _append_some(oracle, store, work, owner, 6)
    await owner.execute("UPDATE projection_state SET policy = 'credibility-v1'")
    gate = Gate("done")
    projector = TimelineProjector(rebuild_workers=1, on_rebuild=gate)
    waiting = asyncio.ensure_future(projector.rebuild(Connector.of(settings)))
    try:
        await gate.at("done")
        await projector.cancel_rebuild()
        report = await asyncio.wait_for(waiting, 30)
    finally:
        gate.release_all()
    assert report.position == (await store.head())[0]
    assert (await projection_state(pool)).follows(SERVED)
    await check_history(owner, oracle, work.places)
    assert await owner.fetchval("SELECT count(*) FROM segments_next") == 0
    assert not await pool.fetchval(PROJECTION_SQL.read_rebuild_running)


async def test_a_rebuild_with_a_policy_its_workers_do_not_know_is_refused_at_once(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """A rebuild whose workers could not fold (the policy it is given is unknown to them)
    fails with RebuildFailed before it takes the lock; the rows are as they were and the
    next rebuild runs."""
    store = EventStore(pool, TimelineProjector())
    work = Workload.of(RandomPick(random.Random(5)), 3, 2)
    await _append_some(Oracle(), store, work, owner, 4)
    before, state = await snapshot(owner), await projection_state(pool)
    unknown = TimelineProjector(policy=_renamed(SERVED, "credibility-test"))
    with pytest.raises(RebuildFailed, match="no policy 'credibility-test'"):
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
    query = PROJECTION_SQL.read_timeline
    async with pool.acquire() as conn:
        assert [r["body"] for r in await conn.fetch(query, "sy-x", 1)] == [body % 1]
        prepared = await conn.prepare(query)
        assert [r["body"] for r in await prepared.fetch("sy-x", 1)] == [body % 1]
        async with pool.acquire() as other, other.transaction():
            await other.fetchrow(STORE_SQL.lock_head)
            await other.execute(PROJECTION_SQL.swap_segments, 0, SERVED.name, SERVED.version)
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
        ("segments_next", "segments_next_place_valid"),
        ("segments", "segments_place_bitemporal"),
        ("segments", "segments_place_valid"),
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
        await conn.execute(PROJECTION_SQL.clear_segments_next)
        with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="not indexed"):
            async with conn.transaction():
                await conn.execute(PROJECTION_SQL.swap_segments, 0, SERVED.name, SERVED.version)
        await conn.execute(PROJECTION_SQL.index_segments_next)
    definers = await owner.fetch(
        "SELECT proname, prosecdef, proconfig FROM pg_proc WHERE proname LIKE 'frontline_%seg%'"
    )
    assert {r["proname"]: r["prosecdef"] for r in definers} == {
        "frontline_clear_segments_next": True,
        "frontline_index_segments_next": True,
        "frontline_lock_segments_for_swap": True,
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
        "frontline_lock_segments_for_swap()",
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
