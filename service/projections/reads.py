"""Reading the front from the projection tables: one indexed query per question."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeVar

import asyncpg
import msgspec

from contracts.events import event_decoder
from contracts.front import (
    EventLink,
    HistoryEntry,
    HistoryEvent,
    PlaceEvent,
    PlaceInfo,
    PlaceState,
    Reading,
    Reread,
    StateExtent,
    Transition,
)
from contracts.timeline import Segment
from service.domain.history import changed_fields, control_changes
from service.domain.projection import in_force
from service.domain.registry import EMPTY, registry_after
from service.errors import NotFound, NotReady
from service.projections.queries import SQL
from service.projections.timelines import ProjectionState, projection_state
from service.query import BBox, ChangeCursor, KnownAt, change_cursor_text
from service.store.events import registry_row
from service.store.queries import SQL as STORE_SQL

_segment: Final = msgspec.json.Decoder(Segment)
_PAGE_ALL: Final = 1000
POLICY_READS: Final = 3
"""Reads of an answer, at most, when a rebuild's swap changes the rows' policy under it."""
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ChangesQuery:
    """What ``GET /v1/state/changes`` asks, parsed: changes with ``start <= at <= end``."""

    start: datetime
    end: datetime
    known_position: int
    place: str | None = None
    side: str | None = None
    bbox: BBox | None = None
    after: ChangeCursor | None = None
    limit: int = 500


@dataclass(frozen=True, slots=True)
class StateQuery:
    """What ``GET /v1/state`` asks, parsed."""

    valid_at: datetime
    known_position: int
    bbox: BBox | None = None
    side: str | None = None
    status: str | None = None
    disputed: bool | None = None
    cursor: str = ""
    limit: int = 500


def place_info(row: asyncpg.Record) -> PlaceInfo:
    """A places row as the API shows it."""
    return PlaceInfo(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        lat=row["lat"],
        lon=row["lon"],
        parent=row["parent"],
        aliases=list(row["aliases"]),
        precision=row["precision"],
    )


class _SourceName(msgspec.Struct, frozen=True):
    name: str


class _HistoryFacts(msgspec.Struct, frozen=True):
    """The fields of a payload the history lists (the rest is skipped unread)."""

    source: _SourceName
    hedge: str = "reported"
    side: str | None = None


_history_facts: Final = msgspec.json.Decoder(_HistoryFacts)


def _reading(segment: Segment | None) -> Reading | None:
    if segment is None:
        return None
    return Reading(
        controller=segment.controller,
        status=segment.status,
        status_by=segment.status_by,
        disputed=segment.disputed,
    )


@dataclass(frozen=True, slots=True)
class StateRow:
    """A place and its segment's JSON as stored: answers pass it on without decoding it."""

    place: PlaceInfo
    body: str


@dataclass(frozen=True, slots=True)
class RegisteredPlace:
    """A place as the registry holds it now: as the API shows it, its stream's version, and
    the first and last positions of its events."""

    info: PlaceInfo
    version: int
    first_position: int
    last_position: int


@dataclass(frozen=True, slots=True)
class RowsAt:
    """What an answer reads: the commit position it is as of, and the policy whose rows
    hold it (while a rebuild to another policy runs, the old policy's, named as such)."""

    position: int
    policy: str
    policy_version: int


@dataclass(frozen=True, slots=True)
class Resolved:
    """What ``known_at`` names: the commit position (in the log, or, by default, the latest
    the projections reached), its chain hash when the log was asked for (what an export is
    as of), and the rows an answer of the front reads."""

    position: int
    chain_hash: bytes | None
    rows: RowsAt


class FrontReader:
    """Answers about the front, from ``segments`` and ``places``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def resolve(self, known: KnownAt, *, log: bool = False) -> Resolved:
        """What ``known`` names, in one read (``resolve_known_at.sql``): the last commit at
        or before ``known_at``, by default the latest the projections reached, or with
        ``log`` the log's head, and then its chain hash too; and the rows an answer of the
        front is as of: that position, never past what the projections hold, and their
        policy."""
        row = await self.pool.fetchrow(SQL.resolve_known_at, known.position, known.time, log)
        assert row is not None  # the migrations insert the head and projection state rows
        position: int = row["position"]
        chain_hash = None if row["hash"] is None else bytes(row["hash"])
        rows = RowsAt(min(position, row["projected"]), row["policy"], row["policy_version"])
        return Resolved(position, chain_hash, rows)

    async def rows_at(self, known: KnownAt) -> RowsAt:
        """The rows an answer of the front is as of (see :meth:`resolve`)."""
        return (await self.resolve(known)).rows

    async def read_at(
        self, known: KnownAt, read: Callable[[RowsAt], Awaitable[T]]
    ) -> tuple[RowsAt, T]:
        """``read`` as of the rows ``known`` names, and what those rows are (policy,
        position). The projection's state and the rows are read by different statements,
        and a rebuild's swap may come between them: the rows read would then be the new
        table's while the state named the old one's policy. So the state is read again
        after the rows, and the whole read again when the policy changed meanwhile."""
        for _ in range(POLICY_READS):
            at = await self.rows_at(known)
            answer = await read(at)
            now = await projection_state(self.pool)
            if (now.policy, now.policy_version) == (at.policy, at.policy_version):
                return at, answer
        raise NotReady(
            f"the projections changed policy {POLICY_READS} times while this answer was read; retry"
        )

    async def projection(self) -> ProjectionState:
        """The projections' policy and the position they have reached (one row)."""
        return await projection_state(self.pool)

    async def canonical_side(self, side: str | None, position: int) -> str | None:
        """The registered side a ``side=`` filter names, as the side registry stood at
        ``position`` (an alias finds its side: the rows hold canonical sides only)."""
        if side is None:
            return None
        rows = await self.pool.fetch(STORE_SQL.read_registry, position)
        return registry_after(EMPTY, [registry_row(r) for r in rows]).canonical(side)

    async def known_position(self, known: KnownAt) -> int:
        """The commit position an answer is as of (see :meth:`rows_at`)."""
        return (await self.rows_at(known)).position

    async def state_rows(self, query: StateQuery) -> tuple[list[StateRow], str | None]:
        """One page of the front with each segment as stored (JSON), and the next cursor."""
        box = query.bbox
        side = await self.canonical_side(query.side, query.known_position)
        filters = (side, query.status, query.disputed, query.cursor, query.limit + 1)
        at = (query.valid_at, query.known_position)
        if box is None:
            rows = await self.pool.fetch(SQL.read_state, *at, *filters)
        else:
            corners = (box.west, box.south, box.east, box.north)
            rows = await self.pool.fetch(SQL.read_state_in_box, *at, *corners, *filters)
        items = [StateRow(place_info(r), r["body"]) for r in rows]
        if len(items) > query.limit:
            items = items[: query.limit]
            return items, items[-1].place.id
        return items, None

    async def state(self, query: StateQuery) -> tuple[list[PlaceState], str | None]:
        """One page of the front, and the cursor of the next page (None on the last)."""
        rows, cursor = await self.state_rows(query)
        return [PlaceState(place=r.place, segment=_segment.decode(r.body)) for r in rows], cursor

    async def whole_state(self, query: StateQuery) -> list[PlaceState]:
        """Every page of the front at once (for comparisons between two times)."""
        cursor = ""
        everything: list[PlaceState] = []
        while True:
            page = dataclasses.replace(query, cursor=cursor, limit=_PAGE_ALL)
            items, cursor_next = await self.state(page)
            everything.extend(items)
            if cursor_next is None:
                return everything
            cursor = cursor_next

    async def places_as_known(
        self, ids: list[str], known_position: int
    ) -> dict[str, tuple[str, tuple[float, float] | None]]:
        """Places as the log knew them at a position: name and point (lat, lon), if any."""
        rows = await self.pool.fetch(SQL.read_places_as_known, ids, known_position)
        return {
            r["place_id"]: (
                r["name"],
                (r["lat"], r["lon"]) if r["lat"] is not None and r["lon"] is not None else None,
            )
            for r in rows
        }

    async def event_sources(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The source name of each of these events."""
        rows = await self.pool.fetch(SQL.read_event_sources, ids)
        return {r["id"]: r["source"] for r in rows}

    async def extent(self, known_position: int) -> StateExtent:
        """How far the log's events reach in valid and in known time, as known at a position."""
        row = await self.pool.fetchrow(SQL.read_extent, known_position)
        assert row is not None  # an aggregate always answers one row
        return StateExtent(
            known_position=known_position,
            events=row["events"],
            valid_from=row["valid_from"],
            valid_to=row["valid_to"],
            first_recorded_at=row["first_recorded_at"],
            last_recorded_at=row["last_recorded_at"],
        )

    async def place(self, place_id: str) -> RegisteredPlace:
        """The registry's entry of a place; NotFound when no event named it."""
        row = await self.pool.fetchrow(SQL.read_place, place_id)
        if row is None:
            raise NotFound(f"no event names a place {place_id!r}", field="place_id")
        return RegisteredPlace(
            place_info(row), row["version"], row["first_position"], row["last_position"]
        )

    async def timeline(self, place_id: str, known_position: int) -> list[Segment]:
        """A place's segments as known at a position, in valid-time order."""
        rows = await self.pool.fetch(SQL.read_timeline, place_id, known_position)
        return [_segment.decode(r["body"]) for r in rows]

    async def history(
        self, place_id: str, after: int, limit: int
    ) -> tuple[list[HistoryEntry], int | None]:
        """A page of a place's commits after ``after``: events, rows replaced, rows added,
        and where the map's reading changed; and the cursor of the next page."""
        rows = await self.pool.fetch(SQL.read_place_history_events, place_id, after, limit + 1)
        commits = sorted({r["commit_position"] for r in rows})
        following = None
        if len(commits) > limit:
            commits, following = commits[:limit], commits[limit - 1]
        if not commits:
            return [], None
        segments = await self.pool.fetch(
            SQL.read_place_history_rows, place_id, commits[0], commits[-1], commits
        )
        removed: dict[int, list[Segment]] = {}
        added: dict[int, list[Segment]] = {}
        for r in segments:
            segment = _segment.decode(r["body"])
            added.setdefault(r["known_from"], []).append(segment)
            if r["known_to"] is not None:
                removed.setdefault(r["known_to"], []).append(segment)
        entries: dict[int, HistoryEntry] = {}
        for r in rows:
            commit = r["commit_position"]
            if commit > commits[-1]:
                continue  # the commit after the page: only fetched to know there is one
            entry = entries.get(commit)
            if entry is None:
                before, after_ = removed.get(commit, []), added.get(commit, [])
                entry = entries[commit] = HistoryEntry(
                    commit_position=commit,
                    recorded_at=r["recorded_at"],
                    events=[],
                    removed=before,
                    added=after_,
                    changes=[
                        Reread(
                            valid_from=c.valid_from,
                            valid_to=c.valid_to,
                            before=_reading(c.before),
                            after=_reading(c.after),
                        )
                        for c in control_changes(before, after_)
                    ],
                )
            facts = _history_facts.decode(r["payload"])
            entry.events.append(
                HistoryEvent(
                    position=r["position"],
                    id=r["id"],
                    type=r["type"],
                    source=facts.source.name,
                    side=facts.side,
                    hedge=facts.hedge,
                )
            )
        return list(entries.values()), following

    async def place_events(self, place_id: str, known_position: int) -> list[PlaceEvent]:
        """Every event about a place up to a position, with links both ways and in-force."""
        rows = await self.pool.fetch(SQL.read_place_events, place_id, known_position)
        events = [event_decoder.decode(r["payload"]) for r in rows]
        force = in_force(events)
        linked_from: dict[object, list[EventLink]] = {}
        for event in events:
            for link in event.relates_to:
                assert event.id is not None  # stored events always have their id
                linked_from.setdefault(link.event, []).append(
                    EventLink(event=event.id, relation=link.relation)
                )
        answer = []
        for row, event in zip(rows, events, strict=True):
            answer.append(
                PlaceEvent(
                    position=row["position"],
                    id=row["id"],
                    type=row["type"],
                    recorded_at=row["recorded_at"],
                    source=event.source.name,
                    in_force=force[row["id"]],
                    relates_to=[EventLink(event=x.event, relation=x.relation)
                                for x in event.relates_to],
                    linked_from=linked_from.get(row["id"], []),
                    event=msgspec.Raw(row["payload"].encode()),
                )
            )  # fmt: skip
        return answer

    async def changes(self, query: ChangesQuery) -> tuple[list[Transition], str | None]:
        """One page of the front's changes, and the cursor of the next page (None on the
        last): one query (``read_state_changes.sql``), one probe of each place it visits."""
        after = query.after
        box = query.bbox
        corners = (box.west, box.south, box.east, box.north) if box else (None, None, None, None)
        rows = await self.pool.fetch(
            SQL.read_state_changes,
            query.start,
            query.end,
            query.known_position,
            after.place if after else "",
            after.at if after else None,
            query.place,
            await self.canonical_side(query.side, query.known_position),
            *corners,
            query.limit + 1,
        )
        items = []
        for row in rows[: query.limit]:
            before = _segment.decode(row["before_body"]) if row["before_body"] else None
            segment = _segment.decode(row["after_body"])
            items.append(
                Transition(
                    place=place_info(row),
                    at=row["at"],
                    changed=changed_fields(before, segment),
                    before=before,
                    after=segment,
                )
            )
        if len(rows) > query.limit:
            last = items[-1]
            return items, change_cursor_text(ChangeCursor(last.place.id, last.at))
        return items, None
