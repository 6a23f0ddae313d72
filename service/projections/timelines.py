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
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Final

import asyncpg
import structlog

from contracts.events import Event, event_decoder
from service.domain.bitemporal import OpenRows, SegmentRow, changes, history, rows_of
from service.domain.policy import SERVED, Policy
from service.domain.projection import PlaceFold
from service.store.queries import SQL

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

log = structlog.get_logger(__name__)

SEGMENT_COLUMNS: Final = (
    "place_id", "valid_from", "valid_to", "known_from", "known_to", "controller", "status",
    "status_by", "disputed", "confidence", "basis", "body",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ProjectionState:
    """Which policy the projections follow, and up to which position of the log."""

    policy: str
    policy_version: int
    position: int


async def projection_state(pool: asyncpg.Pool) -> ProjectionState:
    """The projections' policy and the position they have reached."""
    row = await pool.fetchrow(SQL["read_projection_state"])
    assert row is not None  # the migration inserts the row
    return ProjectionState(row["policy"], row["policy_version"], row["position"])


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

    def __init__(self, policy: Policy = SERVED, cache_events: int = 1_000_000) -> None:
        self.policy = policy
        self.cache_events = cache_events
        """How many events the folds kept in memory may hold together (least recently used
        places are dropped first)."""
        self._cache: OrderedDict[str, _Held] = OrderedDict()
        self._held = 0
        """Events held by the cached folds, together."""
        self._lock = asyncio.Lock()

    def session(self) -> ProjectionSession:
        """The projection side of one append transaction: ``async with`` around it."""
        return ProjectionSession(self)

    async def apply(
        self,
        conn: Connection,
        versions: Mapping[str, int],
        commit_position: int,
        added: Mapping[str, Sequence[Event]],
    ) -> None:
        """Bring the places a commit touched up to it, in its transaction (under the lock).

        ``versions`` maps each touched place to its version after the commit, ``added`` to
        the events the commit appends to it (as stored, ids included). A place held at the
        version before the commit folds those alone; the others read their log.
        """
        places = sorted(versions)
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
        if writes.close_starts:
            await conn.execute(
                SQL["close_segments"], commit_position, writes.close_places, writes.close_starts
            )
        if writes.inserts:
            await conn.copy_records_to_table(
                "segments",
                records=[_record(row, commit_position, None) for row in writes.inserts],
                columns=SEGMENT_COLUMNS,
            )
        await conn.execute(
            SQL["move_projection"], commit_position, self.policy.name, self.policy.version
        )
        self._evict()

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
        refold = entry.fold.add(new)
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
        rows = await conn.fetch(SQL["read_place_events_after"], places, [0] * len(places))
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
        for row in await conn.fetch(SQL["read_current_segments"], places):
            current[row["place_id"]][row["valid_from"]] = (row["body"].encode(), row["known_from"])
        for place in places:
            fold = PlaceFold(self.policy)
            fold.add(loaded[place])
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

    def _count(self, entry: _Held) -> None:
        self._held += len(entry.fold) - entry.counted
        entry.counted = len(entry.fold)

    def _evict(self) -> None:
        """Drop places larger than the whole cache, then the least recently used ones while
        the folds hold too many events."""
        self.drop([p for p, entry in self._cache.items() if entry.counted > self.cache_events])
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
        """Drop the whole cache (after a rebuild, or when another writer may have raced us)."""
        self._cache.clear()
        self._held = 0

    async def rebuild(self, pool: asyncpg.Pool) -> int:
        """Recompute every row from the log, commit by commit; return the rows written.

        One transaction holding the head lock: appenders wait, and readers keep seeing the
        old rows until it commits.
        """
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            committed = False
            try:
                await conn.fetchrow(SQL["lock_head"])
                # The head lock first, then the cache's: the order appenders take them in.
                async with self._lock:
                    try:
                        written = await self._rebuild(conn)
                        await transaction.commit()
                        committed = True
                    finally:
                        self.forget()
            finally:
                if not committed:
                    # After a failed COMMIT the server has rolled back already; the error
                    # that got us here is the one to report.
                    with suppress(asyncpg.InterfaceError, asyncpg.PostgresError):
                        await transaction.rollback()
        return written

    async def _rebuild(self, conn: Connection) -> int:
        await conn.execute(SQL["clear_segments"])
        written = 0
        batch: list[tuple[object, ...]] = []
        async for place, commits in _places(conn):
            for item in history(place, commits, self.policy):
                batch.append(_record(item.row, item.known_from, item.known_to))
            if len(batch) >= 5000:
                written += await _copy(conn, batch)
        written += await _copy(conn, batch)
        head = await conn.fetchrow(SQL["read_head"])
        assert head is not None  # the migration inserts the head row, a trigger keeps it
        await conn.execute(
            SQL["move_projection"], head["position"], self.policy.name, self.policy.version
        )
        return written


async def _copy(conn: Connection, batch: list[tuple[object, ...]]) -> int:
    count = len(batch)
    if batch:
        await conn.copy_records_to_table("segments", records=batch, columns=SEGMENT_COLUMNS)
        batch.clear()
    return count


async def _places(
    conn: Connection,
) -> AsyncIterator[tuple[str, list[tuple[int, Sequence[Event]]]]]:
    """Each place with its events grouped by commit, in position order, one place at a time."""
    place: str | None = None
    commits: list[tuple[int, list[Event]]] = []
    async for row in conn.cursor(SQL["read_log_for_rebuild"], prefetch=5000):
        if row["place_id"] != place:
            if place is not None:
                yield place, list(commits)
            place, commits = row["place_id"], []
        event = event_decoder.decode(row["payload"])
        if commits and commits[-1][0] == row["commit_position"]:
            commits[-1][1].append(event)
        else:
            commits.append((row["commit_position"], [event]))
    if place is not None:
        yield place, list(commits)


def _record(row: SegmentRow, known_from: int, known_to: int | None) -> tuple[object, ...]:
    return (
        row.place_id, row.valid_from, row.valid_to, known_from, known_to, row.controller,
        row.status, row.status_by, row.disputed, row.confidence, row.basis, row.body.decode(),
    )  # fmt: skip


class ProjectionSession:
    """Around one append transaction: ``apply`` holds the projector's lock until the end.

    Entered before the transaction and left after it, so the cache changes of a commit are
    kept only when the commit succeeded; on any failure the touched places are dropped.
    """

    def __init__(self, projector: TimelineProjector) -> None:
        self._projector = projector
        self._touched: list[str] = []
        self._locked = False

    async def __aenter__(self) -> ProjectionSession:
        return self

    async def apply(
        self,
        conn: Connection,
        versions: Mapping[str, int],
        commit_position: int,
        added: Mapping[str, Sequence[Event]],
    ) -> None:
        """Project one commit (called once the head lock is held)."""
        if not self._locked:
            await self._projector._lock.acquire()
            self._locked = True
        self._touched.extend(versions)
        await self._projector.apply(conn, versions, commit_position, added)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is not None:
            self._projector.drop(self._touched)
        if self._locked:
            self._projector._lock.release()
            self._locked = False
