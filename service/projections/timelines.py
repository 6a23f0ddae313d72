"""The bitemporal timeline of every place, maintained in the append transaction.

A commit that adds events to some places re-projects those places (``project_place`` over
all their events) and, in the same transaction, closes the rows that changed and inserts
the new ones, so a 2xx to a POST means the projection already shows the event, and the
rows known at a commit's position are exactly the projection of the events up to it.

Decoded events are cached per place (by place version) so a commit reads only the events
it does not hold yet; the fold itself is still over the whole place (see issue notes).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

import asyncpg
import structlog

from contracts.events import Event, event_decoder
from service.domain.bitemporal import SegmentRow, changes, history, rows_of
from service.domain.policy import CREDIBILITY_V1, Policy
from service.domain.projection import changes_nothing, project_place
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


@dataclass(frozen=True, slots=True)
class _Cached:
    version: int
    events: tuple[Event, ...]


class TimelineProjector:
    """Keeps the ``segments`` table in step with the log, one commit at a time."""

    def __init__(self, policy: Policy = CREDIBILITY_V1, cache_events: int = 200_000) -> None:
        self.policy = policy
        self.cache_events = cache_events
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._cached_total = 0

    async def apply(
        self, conn: Connection, versions: dict[str, int], commit_position: int
    ) -> dict[str, _Cached]:
        """Re-project the places a commit touched; return the cache entries to keep.

        ``versions`` maps each touched place to its version after the commit. The caller
        calls :meth:`keep` with the result once the transaction has committed, so a
        rolled-back commit never leaves events in the cache.
        """
        places = sorted(versions)
        held = [self._cache.get(p) for p in places]
        after = [c.version if c is not None else 0 for c in held]
        loaded: dict[str, list[Event]] = {p: [] for p in places}
        for row in await conn.fetch(SQL["read_place_events_after"], places, after):
            loaded[row["place_id"]].append(event_decoder.decode(row["payload"]))
        current: dict[str, dict[datetime, bytes]] = {p: {} for p in places}
        for row in await conn.fetch(SQL["read_current_segments"], places):
            current[row["place_id"]][row["valid_from"]] = row["body"].encode()
        fresh: dict[str, _Cached] = {}
        close_places: list[str] = []
        close_starts: list[datetime] = []
        inserts: list[SegmentRow] = []
        for place, cached in zip(places, held, strict=True):
            events = (cached.events if cached is not None else ()) + tuple(loaded[place])
            fresh[place] = _Cached(versions[place], events)
            if all(changes_nothing(event) for event in loaded[place]):
                # The rows as they stand are the projection without these events, which is
                # the projection with them: nothing to refold, nothing to write.
                continue
            delta = changes(current[place], rows_of(place, project_place(events, self.policy)))
            close_places.extend([place] * len(delta.close))
            close_starts.extend(delta.close)
            inserts.extend(delta.insert)
        if close_starts:
            await conn.execute(SQL["close_segments"], commit_position, close_places, close_starts)
        if inserts:
            await conn.copy_records_to_table(
                "segments",
                records=[_record(row, commit_position, None) for row in inserts],
                columns=SEGMENT_COLUMNS,
            )
        await conn.execute(
            SQL["move_projection"], commit_position, self.policy.name, self.policy.version
        )
        return fresh

    def keep(self, fresh: dict[str, _Cached]) -> None:
        """Remember committed places' events, evicting the least recently used beyond the cap."""
        for place, entry in fresh.items():
            held = self._cache.get(place)
            if held is not None and held.version >= entry.version:
                continue  # a later commit, finished first, already left a newer entry
            old = self._cache.pop(place, None)
            self._cached_total -= len(old.events) if old is not None else 0
            if len(entry.events) > self.cache_events:
                continue
            self._cache[place] = entry
            self._cached_total += len(entry.events)
        while self._cached_total > self.cache_events and self._cache:
            _, evicted = self._cache.popitem(last=False)
            self._cached_total -= len(evicted.events)

    def forget(self) -> None:
        """Drop the cache (after a rebuild, or when another writer may have raced us)."""
        self._cache.clear()
        self._cached_total = 0

    async def rebuild(self, pool: asyncpg.Pool) -> int:
        """Recompute every row from the log, commit by commit; return the rows written.

        One transaction holding the head lock: appenders wait, and readers keep seeing the
        old rows until it commits.
        """
        async with pool.acquire() as conn, conn.transaction():
            await conn.fetchrow(SQL["lock_head"])
            written = await self._rebuild(conn)
        self.forget()
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
