"""The bitemporal timeline of every place, maintained in the append transaction.

A commit that adds events to some places brings those places' timelines up to date and, in
the same transaction, closes the rows that changed and inserts the new ones, so a 2xx to a
POST means the projection already shows the event, and the rows known at a commit's position
are exactly the projection of the events up to it.

Each place's fold (:class:`~service.domain.projection.PlaceFold`) and current rows are kept
in memory between commits, by place version, so a commit folds the events it appends (it
holds them already) and refolds only from the earliest valid time they can change. A
place not held, or held at an older version (another process appended since), is folded
from its whole log and compared with its stored rows. Appends of one process go through the
cache one commit at a time (an asyncio lock, taken once the head lock is held and released
after the commit); a commit that fails drops the places it touched from the cache.

A commit writes rows only while the table is in step: its rows follow this policy and the
projection stood at the position just before the commit. Otherwise (rows of another policy,
after a switch of ``SERVED``; or a log appended to with projections off) the rows are
stale, the commit leaves them and the position alone, and only a rebuild brings them back:
:mod:`service.projections.rebuild`, which folds in worker processes into a twin table and
swaps it in, while this process serves and appends (``frontline serve`` starts one by itself
when it finds the rows stale).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

import asyncpg
import structlog

from contracts.events import Event, event_decoder
from service.domain.bitemporal import OpenRows, SegmentRow, changes, rows_of
from service.domain.policy import SERVED, Policy, superseded
from service.domain.projection import Fact, PlaceFold
from service.domain.registry import EMPTY, PLACE_MARK, SideRegistry
from service.errors import RebuildInterrupted, RebuildUnderWay
from service.projections.queries import SQL
from service.projections.rebuild import (
    SPARE_CONNECTIONS,
    Observer,
    Rebuild,
    RebuildProgress,
    RebuildReport,
    places_remapped,
    workers_for,
)
from service.store.db import Connector
from service.store.queries import SQL as STORE_SQL

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy
    from asyncpg.transaction import Transaction

    Connection = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ProjectionState:
    """Which policy the projections follow, and up to which position of the log."""

    policy: str
    policy_version: int
    position: int

    def follows(self, policy: Policy) -> bool:
        """Whether the rows were made by this policy."""
        return (self.policy, self.policy_version) == (policy.name, policy.version)

    def rebuilt_by_itself(self, policy: Policy) -> bool:
        """Whether a process serving ``policy`` rebuilds these rows at start-up: when they
        are its policy's (behind the log), or a policy it knows to be older. Rows of a
        policy it does not know may be a later version's (a rolling deploy): it leaves them
        to a rebuild asked for by hand, and is not ready meanwhile."""
        return self.follows(policy) or superseded(self.policy, self.policy_version, policy)

    def other_policy(self, policy: Policy) -> str:
        """Why rows of another policy than ``policy`` are stale, and whether they are older."""
        said = (
            f"the projections hold rows of {self.policy} (version {self.policy_version}); "
            f"this code serves {policy.name} (version {policy.version})"
        )
        if superseded(self.policy, self.policy_version, policy):
            return said
        return (
            f"{said}, and does not know {self.policy} to be older (a later version of the "
            "service may have made them), so it does not rebuild them by itself"
        )


async def projection_state(pool: asyncpg.Pool | Connection) -> ProjectionState:
    """The projections' policy and the position they have reached."""
    row = await pool.fetchrow(STORE_SQL.read_projection_state)
    assert row is not None  # the migration inserts the row
    return ProjectionState(row["policy"], row["policy_version"], row["position"])


async def rebuild_running(pool: asyncpg.Pool) -> bool:
    """Whether a rebuild is under way, in this process or another (its lock is held)."""
    return bool(await pool.fetchval(SQL.read_rebuild_running))


async def stale_because(pool: asyncpg.Pool, policy: Policy = SERVED) -> str | None:
    """Why the stored rows are not those ``policy`` gives the log, or None when they are.

    An empty log with rows of another policy is adopted on the spot (it has no rows to
    rebuild): the projection then names ``policy`` at position 0.
    """
    state = await projection_state(pool)
    row = await pool.fetchrow(STORE_SQL.read_head)
    assert row is not None  # the migration inserts the head row, a trigger keeps it
    head = row["position"]
    if state.follows(policy) and state.position == head:
        return None
    if head == 0 and await pool.fetchval(SQL.adopt_policy, policy.name, policy.version):
        log.info("projections_adopted_policy", policy=policy.name)
        return None
    if not state.follows(policy):
        return f"{state.other_policy(policy)} (their rows reach position {state.position})"
    return f"the projections stop at position {state.position} and the log at {head}"


@dataclass(slots=True)
class _Held:
    """A place's fold and current rows as of one place version."""

    version: int
    fold: PlaceFold
    rows: OpenRows
    counted: int = 0
    """The events this entry adds to the projector's total (its fold's size when counted)."""


@dataclass(slots=True)
class _Writes:
    """What one commit writes to ``segments``."""

    close_places: list[str] = field(default_factory=list)
    close_starts: list[datetime] = field(default_factory=list)
    inserts: list[SegmentRow] = field(default_factory=list)

    def close(self, place: str, starts: Sequence[datetime]) -> None:
        self.close_places.extend([place] * len(starts))
        self.close_starts.extend(starts)


class TimelineProjector:
    """Keeps the ``segments`` table in step with the log, one commit at a time."""

    def __init__(
        self,
        policy: Policy = SERVED,
        cache_events: int = 1_000_000,
        *,
        rebuild_workers: int = 0,
        rebuild_spare: int = SPARE_CONNECTIONS,
        on_rebuild: Observer | None = None,
    ) -> None:
        self.policy = policy
        self.cache_events = cache_events
        """How many events the folds kept in memory may hold together (least recently used
        places are dropped first)."""
        self.rebuild_workers = rebuild_workers
        """Worker processes of a rebuild (0: one per core)."""
        self.rebuild_spare = rebuild_spare
        """Database connections a rebuild leaves free for the service's pool (fewer workers
        when the server has fewer free)."""
        self.on_rebuild = on_rebuild
        """Told each stage of a rebuild, and awaited (logs; tests hold a rebuild open)."""
        self._cache: OrderedDict[str, _Held] = OrderedDict()
        self._held = 0
        """Events held by the cached folds, together."""
        self._lock = asyncio.Lock()
        self._rebuild: asyncio.Task[RebuildReport] | None = None
        self._freeing: set[asyncio.Task[None]] = set()
        """Tasks freeing forgotten folds (held here so that they are not collected)."""
        self._progress: RebuildProgress | None = None
        self._running: Rebuild | None = None
        """The last rebuild started (its report is set once its rows are swapped in)."""
        self._in_step = True
        """Whether the last commit found the rows in step (to log the change once)."""
        self._sides: SideRegistry | None = None
        """The side registry the held folds read their events through (None: not known
        yet, no fold held)."""

    @property
    def cached_places(self) -> int:
        """Places whose fold is held in memory."""
        return len(self._cache)

    @property
    def cached_events(self) -> int:
        """Events the held folds hold together."""
        return self._held

    def session(self) -> ProjectionSession:
        """The projection side of one append transaction: ``async with`` around it."""
        return ProjectionSession(self)

    async def apply(
        self,
        conn: Connection,
        versions: Mapping[str, int],
        commit_position: int,
        added: Mapping[str, Sequence[Event]],
        sides: tuple[SideRegistry, SideRegistry] = (EMPTY, EMPTY),
        size: int | None = None,
    ) -> None:
        """Bring the places a commit touched up to it, in its transaction (under the lock).

        ``versions`` maps each touched place to its version after the commit, ``added`` to
        the events the commit appends to it (as stored, ids included). A place held at the
        version before the commit folds those alone; the others read their log. Nothing is
        written when the rows are stale (see the module's docstring).

        ``size`` is the commit's number of events (default: those of ``added``; a commit
        may hold registry events too). ``sides`` is the side registry as the commit found it
        and as it leaves it: every
        fold reads its events through the latter. When the commit itself remaps names
        (an alias added or removed), the places whose events use one of them are folded
        again from their log, in this commit (their rows change at its position). When
        the registry found differs from the one the held folds were made with (another
        process changed it, and refolded those places then), the held folds are dropped.
        """
        found, after = sides
        if self._sides is not None and self._sides is not found:
            self.forget()
        self._sides = after
        remapped = found.remapped(after) if after is not found else frozenset()
        if size is None:
            size = sum(len(events) for events in added.values())
        before = commit_position - size
        if any(not name.startswith(PLACE_MARK) for name in remapped):
            # The held folds read some events through the old registry. A merge or unmerge
            # alone remaps no name: the places it joins or parts are folded cold below
            # (_fold_joined drops their held folds), and no other place's fold changes.
            self.forget()
        if not self._in_step and not await conn.fetchval(
            SQL.in_step, before, self.policy.name, self.policy.version
        ):
            # Still stale: no fold (nothing would be written); only a rebuild brings the
            # rows back.
            self.forget()
            return
        if remapped:
            versions = {**await places_remapped(conn, remapped, commit_position), **versions}
        joined = _joined(versions, found, after)
        places = sorted(p for p in versions if p not in joined)
        writes = _Writes()
        behind: list[str] = []
        for place in places:
            entry = self._cache.get(place)
            new = added.get(place, ())
            if entry is None or entry.version != versions[place] - len(new):
                behind.append(place)
                continue
            self._fold(place, entry, new, versions[place], commit_position, writes)
        if behind:
            await self._catch_up(conn, behind, versions, commit_position, writes)
        if joined:
            await self._fold_joined(conn, sorted(joined), after, commit_position, writes)
        # One round trip: the function moves the projection only if it was in step, and
        # writes the rows only then.
        projected = await conn.fetchval(
            SQL.project_commit,
            commit_position,
            before,
            self.policy.name,
            self.policy.version,
            writes.close_places,
            writes.close_starts,
            *_columns(writes.inserts),
        )
        if not projected:
            if self._in_step:
                log.warning("projections_stale_appends_not_projected", position=commit_position)
                self._in_step = False
            self.forget()
            return
        self._in_step = True
        self._evict(places)

    def _fold(
        self,
        place: str,
        entry: _Held,
        new: Sequence[Event],
        version: int,
        commit_position: int,
        writes: _Writes,
    ) -> None:
        """Fold a held place's new events; note the rows to close and insert."""
        refold = entry.fold.add(self._facts(new))
        self._count(entry)
        entry.version = version
        self._cache.move_to_end(place)
        if refold is not None:
            closed, inserted = entry.rows.replace(place, refold, commit_position)
            writes.close(place, [row.valid_from for row, _ in closed])
            writes.inserts.extend(inserted)

    async def _catch_up(
        self,
        conn: Connection,
        places: list[str],
        versions: Mapping[str, int],
        commit_position: int,
        writes: _Writes,
    ) -> None:
        """Places not held, or held at an older version: folded from their whole log.

        A place held at an older version means another process appended to it since: its
        rows in memory no longer match the table, so it is dropped and folded cold too.
        """
        behind = [place for place in places if place in self._cache]
        if behind:
            log.info("projection_cache_behind", places=len(behind))
            self.drop(behind)
        loaded: dict[str, list[Event]] = {place: [] for place in places}
        rows = await conn.fetch(SQL.read_place_events_after, places, [0] * len(places))
        for row in rows:
            loaded[row["place_id"]].append(event_decoder.decode(row["payload"]))
        await self._fold_cold(conn, places, loaded, versions, commit_position, writes)

    async def _fold_cold(
        self,
        conn: Connection,
        places: list[str],
        loaded: dict[str, list[Event]],
        versions: Mapping[str, int],
        commit_position: int,
        writes: _Writes,
    ) -> None:
        """Fold places not held from their whole log, against their stored rows."""
        current: dict[str, dict[datetime, tuple[bytes, int]]] = {place: {} for place in places}
        for row in await conn.fetch(SQL.read_current_segments, places):
            current[row["place_id"]][row["valid_from"]] = (row["body"].encode(), row["known_from"])
        for place in places:
            fold = PlaceFold(self.policy)
            fold.add(self._facts(loaded[place]))
            new = rows_of(place, fold.timeline())
            stored = current[place]
            delta = changes({start: body for start, (body, _) in stored.items()}, new)
            writes.close(place, delta.close)
            writes.inserts.extend(delta.insert)
            inserted = {row.valid_from for row in delta.insert}
            known = [
                commit_position if row.valid_from in inserted else stored[row.valid_from][1]
                for row in new
            ]
            entry = self._cache[place] = _Held(versions[place], fold, OpenRows(new, known))
            self._count(entry)

    async def _fold_joined(
        self,
        conn: Connection,
        places: list[str],
        registry: SideRegistry,
        commit_position: int,
        writes: _Writes,
    ) -> None:
        """Places a merge joins with others (or a merge or unmerge of this commit changes):
        each folded from the events of the streams that are its timeline now (none for a
        place merged away), against its stored rows; never held in the cache."""
        self.drop(places)
        streams = {place: registry.timeline_streams(place) for place in places}
        wanted = sorted({s for each in streams.values() for s in each})
        loaded: dict[str, list[Event]] = {place: [] for place in places}
        for row in await conn.fetch(STORE_SQL.read_streams_log, wanted, commit_position):
            owner = registry.place_of(row["place_id"])
            if owner in loaded:
                loaded[owner].append(event_decoder.decode(row["payload"]))
        current: dict[str, dict[datetime, bytes]] = {place: {} for place in places}
        for row in await conn.fetch(SQL.read_current_segments, places):
            current[row["place_id"]][row["valid_from"]] = row["body"].encode()
        for place in places:
            fold = PlaceFold(self.policy)
            fold.add(self._facts(loaded[place]))
            delta = changes(current[place], rows_of(place, fold.timeline()))
            writes.close(place, delta.close)
            writes.inserts.extend(delta.insert)

    def _facts(self, events: Iterable[Event]) -> list[Fact]:
        """The facts of some events, read through the side registry."""
        sides = EMPTY if self._sides is None else self._sides
        return [sides.canonical_fact(Fact.of(event)) for event in events]

    def _count(self, entry: _Held) -> None:
        self._held += len(entry.fold) - entry.counted
        entry.counted = len(entry.fold)

    def _evict(self, touched: Iterable[str]) -> None:
        """Drop the touched places larger than the whole cache, then the least recently
        used places while the folds hold too many events: the cost of what the commit
        touched and of what it evicts, never of the whole cache."""
        self.drop(
            [p for p in touched if (e := self._cache.get(p)) and e.counted > self.cache_events]
        )
        while self._held > self.cache_events and self._cache:
            _, evicted = self._cache.popitem(last=False)
            self._held -= evicted.counted

    def drop(self, places: Iterable[str]) -> None:
        """Forget some places (a commit that touched them failed, or they are stale)."""
        for place in places:
            evicted = self._cache.pop(place, None)
            if evicted is not None:
                self._held -= evicted.counted

    def forget(self) -> None:
        """Drop the whole cache (after a rebuild, or when another writer may have raced us).

        The cache is emptied at once; its folds are freed in the background, a place at a
        time: freeing a million events' folds in one go holds the event loop for seconds.
        """
        old, self._cache = self._cache, OrderedDict()
        self._held = 0
        if not old:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test, a script): free them now
            old.clear()
            return
        task = loop.create_task(_free_gradually(old), name="projections-free-folds")
        self._freeing.add(task)
        task.add_done_callback(self._freeing.discard)

    @property
    def rebuilding(self) -> RebuildProgress | None:
        """The progress of this process's rebuild, or None when none runs."""
        return self._progress if self._rebuild is not None else None

    def start_rebuild(self, connector: Connector) -> asyncio.Task[RebuildReport]:
        """Start a rebuild in the background (:mod:`service.projections.rebuild`); the task
        answers its report. RebuildUnderWay when this process runs one already (the task
        fails with it when another process does)."""
        if self._rebuild is not None:
            assert self._progress is not None
            raise RebuildUnderWay(self._progress.describe())
        rebuild = Rebuild(
            connector=connector,
            policy=self.policy,
            workers=workers_for(self.rebuild_workers),
            keep_events=self.cache_events,
            swap=self._swap,
            observe=self.on_rebuild,
            spare_connections=self.rebuild_spare,
        )
        self._progress = rebuild.progress
        self._running = rebuild
        task = asyncio.get_running_loop().create_task(rebuild.run(), name="projections-rebuild")
        self._rebuild = task
        task.add_done_callback(lambda done: self._rebuild_ended(done, rebuild))
        return task

    def _rebuild_ended(self, task: asyncio.Task[RebuildReport], rebuild: Rebuild) -> None:
        self._rebuild = None
        if task.cancelled() and rebuild.report is not None:
            self._log_report(rebuild.report, cancelled_after_swap=True)
        elif task.cancelled():
            log.warning("projections_rebuild_cancelled")
        elif isinstance(error := task.exception(), RebuildUnderWay):
            log.info("projections_rebuild_refused", reason=str(error))
        elif error is not None:
            log.error("projections_rebuild_failed", error=f"{type(error).__name__}: {error}")
        else:
            self._log_report(task.result())

    @staticmethod
    def _log_report(report: RebuildReport, *, cancelled_after_swap: bool = False) -> None:
        log.info(
            "projections_rebuilt",
            rows=report.rows,
            position=report.position,
            policy=report.policy,
            events=report.events,
            rounds=report.rounds,
            seconds=report.seconds,
            workers=report.workers,
            worker_peak_kib=report.worker_peak_kib,
            locked_seconds=report.locked_seconds,
            lock_wait_seconds=report.lock_wait_seconds,
            caught_up_cold=report.caught_up_cold,
            caught_up_warm=report.caught_up_warm,
            cancelled_after_swap=cancelled_after_swap,
        )

    async def rebuild(self, connector: Connector) -> RebuildReport:
        """Recompute every row from the log without stopping appends or reads; the report.

        Readers see the old rows until the swap, appends made meanwhile are in the new
        rows, and the result is the same rows, bit for bit, as a rebuild with nothing
        appended during it. RebuildUnderWay when another runs; RebuildInterrupted when the
        rebuild is cancelled (the service stops) while the caller waits for it.
        """
        task = self.start_rebuild(connector)
        rebuild = self._running
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            waiting = asyncio.current_task()
            if task.cancelled() and (waiting is None or waiting.cancelling() == 0):
                if rebuild is not None and rebuild.report is not None:
                    return rebuild.report  # cancelled once its rows were swapped in
                raise RebuildInterrupted(
                    "the service is stopping: the rebuild was cancelled (the served rows are "
                    "untouched); ask again once it is back"
                ) from None
            raise  # the caller itself was cancelled: the rebuild goes on

    async def cancel_rebuild(self) -> None:
        """Stop this process's rebuild, if one runs (on shutdown); the rows stay as they were."""
        task = self._rebuild
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _swap(
        self, conn: asyncpg.Connection, transaction: Transaction, position: int
    ) -> None:
        """The rebuild's last step, in its transaction holding the head lock: swap the
        tables, move the projection, commit, and forget the fold cache, all while holding
        the cache's lock (taken after the head lock, as appenders take them)."""
        async with self._lock:
            await conn.execute(SQL.swap_segments, position, self.policy.name, self.policy.version)
            await transaction.commit()
            self.forget()
            self._in_step = True


def _joined(versions: Mapping[str, int], found: SideRegistry, after: SideRegistry) -> set[str]:
    """The places of a commit whose timeline reads other streams than their own: those a
    merge in force joins (a place merged away, its surviving place), and those whose
    merges this commit changes."""
    joined = set(found.merges_changed(after)) if found is not after else set()
    if after.merges:
        for stream in versions:
            if stream in after.merges or after.absorbed(stream):
                joined.update((stream, after.place_of(stream)))
    return joined


async def _free_gradually(entries: OrderedDict[str, _Held]) -> None:
    """Free forgotten folds one place at a time, letting requests run in between."""
    while entries:
        entries.popitem(last=False)
        await asyncio.sleep(0)


def _columns(rows: Sequence[SegmentRow]) -> list[list[object]]:
    """New rows as the column arrays ``frontline_project_commit`` unnests (the columns of
    ``segments`` but the known range, which the commit sets)."""
    columns: list[list[object]] = [[] for _ in range(10)]
    for row in rows:
        values = (
            row.place_id, row.valid_from, row.valid_to, row.controller, row.status,
            row.status_by, row.disputed, row.confidence, row.basis, row.body.decode(),
        )  # fmt: skip
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


class ProjectionSession:
    """Around one append transaction: ``apply`` holds the projector's lock until the end.

    Entered before the transaction and left after it, so the cache changes of a commit are
    kept only when the commit succeeded; on any failure the touched places are dropped.
    """

    def __init__(self, projector: TimelineProjector) -> None:
        self._projector = projector
        self._touched: list[str] = []
        self._locked = False
        self._sides_changed = False

    async def __aenter__(self) -> ProjectionSession:
        return self

    async def apply(
        self,
        conn: Connection,
        versions: Mapping[str, int],
        commit_position: int,
        added: Mapping[str, Sequence[Event]],
        sides: tuple[SideRegistry, SideRegistry] = (EMPTY, EMPTY),
        size: int | None = None,
    ) -> None:
        """Project one commit (called once the head lock is held)."""
        if not self._locked:
            await self._projector._lock.acquire()
            self._locked = True
        self._touched.extend(versions)
        self._sides_changed = sides[0] is not sides[1]
        await self._projector.apply(conn, versions, commit_position, added, sides, size)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is not None:
            self._projector.drop(self._touched)
            if self._sides_changed:
                # The registry the commit would have left is not the log's: refolded
                # places may be held through it.
                self._projector.forget()
                self._projector._sides = None
        if self._locked:
            self._projector._lock.release()
            self._locked = False
