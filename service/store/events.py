"""The event log in PostgreSQL: append groups under the head lock, read pages and streams."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol

import asyncpg
import msgspec
import structlog
from asyncpg.pool import PoolConnectionProxy

from contracts.events import PLACE_STREAM, SIDE_STREAM, SOURCE_STREAM, Event, registry_decoder
from contracts.responses import LinkedFrom, Receipt, StoredEvent
from service.domain.append import (
    AppendRequest,
    GroupPlan,
    Known,
    StoredInfo,
    ids_to_look_up,
    places_to_look_up,
    plan_group,
)
from service.domain.audit import stated_links
from service.domain.errors import FrontlineError
from service.domain.places import PlaceUpdate, registry_updates
from service.domain.registry import (
    EMPTY,
    RegistryRow,
    SideRegistry,
    registry_after,
)
from service.errors import NotReady, WriteRefused
from service.query import BBox
from service.store.queries import SQL
from service.store.signal import CommitSignal

log = structlog.get_logger(__name__)

EVENT_COLUMNS: Final = (
    "position", "id", "place_id", "place_version", "type", "source_key", "valid_from",
    "valid_to", "recorded_at", "commit_position", "submitter", "payload", "payload_digest",
    "record", "prev_hash", "hash",
)  # fmt: skip
#: Joins a place's aliases into one text for ``frontline_append`` (a control character no
#: place name holds).
ALIAS_SEPARATOR: Final = "\x1f"

#: Errors that mean the database could not be reached or the connection broke.
UNAVAILABLE: Final = (
    OSError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    # What asyncpg raises when a connection dies in the middle of a protocol exchange.
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    # Another server process crashed and the postmaster ends every session to recover.
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)

#: Errors of a pooled connection that was already dead when it was handed out: an append
#: that meets one is tried once more, on a fresh connection, before it answers 503.
STALE: Final = (
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
)

Outcome = list[Receipt] | FrontlineError
if TYPE_CHECKING:  # the stubs make these generic; at run time they are plain classes
    Connection = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]


class ProjectorSession(Protocol):
    """The projections' part of one append transaction, entered around it."""

    async def __aenter__(self) -> ProjectorSession: ...

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Told after the transaction, with its error when it failed."""

    async def apply(
        self,
        conn: Connection,
        versions: Mapping[str, int],
        commit_position: int,
        added: Mapping[str, Sequence[Event]],
        sides: tuple[SideRegistry, SideRegistry],
        size: int | None,
    ) -> None:
        """Bring the projections of the touched places up to the commit, in its transaction.

        ``versions``: each touched place's version after the commit; ``added``: the events
        the commit appends to each place, as stored; ``sides``: the side registry as the
        commit found it under the head lock, and as it leaves it; ``size``: the commit's
        number of events (registry events included).
        """


class Projector(Protocol):
    """What the append transaction asks of the projections (``service.projections``)."""

    def session(self) -> ProjectorSession:
        """A session for one append transaction."""


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a reader wants, besides a position to start after: every filter given
    must hold (``read_events_page.sql``)."""

    place: str | None = None
    type: str | None = None
    source: str | None = None
    """A source key (``service.domain.records.source_key``)."""
    side: str | None = None
    """The event's side or its opponent."""
    actor: str | None = None
    """The event's actor, compared case folded (the database's ``lower`` of both)."""
    country: str | None = None
    """A place id: events about it or about a place whose parent chain reaches it."""
    bbox: BBox | None = None
    """Events about places located in this box."""
    valid_from: datetime | None = None
    """Events whose valid interval ends after this instant."""
    valid_to: datetime | None = None
    """Events whose valid interval starts at or before this instant."""
    recorded_from: datetime | None = None
    recorded_to: datetime | None = None

    @property
    def by_places(self) -> bool:
        """Whether the filter names places through the registry (a country, a box)."""
        return self.country is not None or self.bbox is not None


def stored_event(row: asyncpg.Record) -> StoredEvent:
    """A row of ``events`` as the API shows it."""
    return StoredEvent(
        position=row["position"],
        id=row["id"],
        place=row["place_id"],
        place_version=row["place_version"],
        type=row["type"],
        recorded_at=row["recorded_at"],
        commit_position=row["commit_position"],
        hash=row["hash"].hex(),
        prev_hash=row["prev_hash"].hex(),
        payload_digest=row["payload_digest"].hex(),
        event=msgspec.Raw(row["payload"].encode()),
    )


class EventStore:
    """Appends and reads the log through one asyncpg pool."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        projector: Projector | None = None,
        *,
        local_settings: tuple[str, str] | None = None,
    ) -> None:
        self.pool = pool
        self.projector = projector
        """Keeps the projections in the append transaction; None when they are switched off."""
        self.local_settings = local_settings
        """The role and ``synchronous_commit`` each append transaction sets for itself
        (``SET LOCAL``: through a transaction pooler); None: the session's hold them."""
        self.committed = CommitSignal()
        """Notified after every commit of this process (live readers wait on it)."""
        self.commit_observers: list[Callable[[int], None]] = []
        """Told the number of events of every commit of this process (metrics)."""
        self.sides: SideRegistry = EMPTY
        """The side registry as this process last read or wrote it, under the head lock."""
        self._sides_upto = 0
        """The position up to which :attr:`sides` has read the log's registry events."""

    async def append_group(
        self,
        requests: Sequence[AppendRequest],
        *,
        more: Callable[[], Sequence[AppendRequest]] | None = None,
    ) -> list[Outcome]:
        """Write a group of requests in one transaction; each succeeds or fails on its own.

        ``more``, when given, is called once the head lock is held; the requests it returns
        join the group (those that queued while this transaction waited for the lock), and
        their outcomes follow those of ``requests``.

        Should the write itself fail for a reason no request explains (a bug, a constraint
        the planner missed), the group is retried one request at a time, so one request's
        trouble never fails the others.
        """
        group = list(requests)
        try:
            try:
                return await self._append_once(group, more)
            except STALE as error:
                # The pool handed out a connection the server had already closed (a backend
                # terminated, a restart): once, on a fresh one. Safe to repeat: ids are
                # checked first, so what did commit comes back as its original receipts.
                # The others in the pool likely died with it: replace them all.
                log.warning("append_retried_on_a_fresh_connection", error=type(error).__name__)
                await self.pool.expire_connections()
                return await self._append_once(group, more)
        except UNAVAILABLE as error:
            raise NotReady(f"the database is unavailable: {type(error).__name__}") from error
        except asyncpg.PostgresError:
            if len(group) == 1:
                raise
            log.exception("group_commit_failed_retrying_alone", requests=len(group))
        return [await self._append_alone(request) for request in group]

    async def _append_alone(self, request: AppendRequest) -> Outcome:
        """One request in its own transaction; its failure is its outcome, nobody else's."""
        try:
            try:
                (outcome,) = await self._append_once([request], None)
            except STALE:
                await self.pool.expire_connections()
                (outcome,) = await self._append_once([request], None)
        except UNAVAILABLE as error:
            return NotReady(f"the database is unavailable: {type(error).__name__}")
        except asyncpg.PostgresError as error:
            log.exception("append_refused_by_the_database", sqlstate=error.sqlstate)
            return WriteRefused(
                f"the database refused this write (SQLSTATE {error.sqlstate}); "
                "nothing of it was stored"
            )
        return outcome

    async def _append_once(
        self,
        requests: list[AppendRequest],
        more: Callable[[], Sequence[AppendRequest]] | None,
    ) -> list[Outcome]:
        """One transaction for ``requests`` (extended in place by ``more`` under the lock)."""
        projecting = self.projector.session() if self.projector is not None else None
        async with (
            projecting if projecting is not None else nullcontext(),
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            if self.local_settings is not None:
                await conn.execute(SQL.set_local_settings, *self.local_settings)
            head = await conn.fetchrow(SQL.lock_head)
            assert head is not None  # the migration inserts the head row, a trigger keeps it
            if more is not None:
                requests.extend(more())
            recorded_at = head["now"]
            known = await self._known(conn, requests, head["position"])
            plan = plan_group(
                requests,
                known,
                head_position=head["position"],
                head_hash=bytes(head["hash"]),
                recorded_at=recorded_at,
            )
            if plan.created:
                await self._write(conn, plan)
                if projecting is not None:
                    versions: dict[str, int] = {}
                    added: dict[str, list[Event]] = {}
                    for row in plan.rows:
                        event = row.prepared.event
                        if not isinstance(event, Event):  # a registry event
                            continue
                        versions[row.prepared.place_id] = row.place_version
                        added.setdefault(row.prepared.place_id, []).append(event)
                    await projecting.apply(
                        conn,
                        versions,
                        plan.head_position,
                        added,
                        (known.sides, plan.sides),
                        len(plan.rows),
                    )
        # Committed (or nothing written): the registry as the log now holds it.
        self.sides = plan.sides
        if plan.created:
            self._sides_upto = plan.head_position
        if plan.created:
            self.committed.notify()
            for observe in self.commit_observers:
                observe(len(plan.rows))
        return plan.outcomes

    async def _known(self, conn: Connection, requests: Sequence[AppendRequest], head: int) -> Known:
        rows = await conn.fetch(
            SQL.find_known,
            ids_to_look_up(requests),
            places_to_look_up(requests),
            self._sides_upto,
        )
        fresh = sorted(
            (r for r in rows if r["kind"] == "registry"), key=lambda r: int(r["position"])
        )
        sides = self.sides
        if fresh:
            sides = registry_after(sides, [registry_row(r) for r in fresh])
        # Everything up to the head is read now; kept once the transaction ends either way
        # (these rows were committed before it).
        self.sides, self._sides_upto = sides, head
        versions = {r["place_id"]: r["version"] for r in rows if r["kind"] == "place"}
        for stream in places_to_look_up(requests):
            if stream.startswith(SIDE_STREAM):
                side = sides.entries.get(stream.removeprefix(SIDE_STREAM))
                if side is not None:
                    versions[stream] = side.version
            elif stream.startswith(SOURCE_STREAM):
                source = sides.sources.get(stream.removeprefix(SOURCE_STREAM))
                if source is not None:
                    versions[stream] = source.version
            elif stream.startswith(PLACE_STREAM):
                merges = sides.place_streams.get(stream.removeprefix(PLACE_STREAM))
                if merges is not None:
                    versions[stream] = merges
        return Known(
            events={
                r["id"]: StoredInfo(
                    id=r["id"],
                    position=r["position"],
                    place_id=r["place_id"],
                    place_version=r["place_version"],
                    recorded_at=r["recorded_at"],
                    commit_position=r["commit_position"],
                    payload_digest=bytes(r["payload_digest"]),
                    source_key=r["source_key"],
                    submitter=r["submitter"],
                )
                for r in rows
                if r["kind"] == "event"
            },
            place_versions=versions,
            sides=sides,
        )

    async def _write(self, conn: Connection, plan: GroupPlan) -> None:
        """Write the planned commit in one round trip, through the owner's function
        (``frontline_append``, migration 0007): the service role may not write the log's
        tables itself. The function numbers the events after the head and checks the
        chain the plan computed, writes the links the payloads state, the place registry,
        and moves the head."""
        columns: list[list[Any]] = [[] for _ in range(12)]
        for row in plan.rows:
            p = row.prepared
            values = (
                p.id, p.place_id, row.place_version, p.type, p.source_key, p.valid_from,
                p.valid_to, row.submitter, p.payload.decode(), p.payload_digest,
                row.record.decode(), row.hash,
            )  # fmt: skip
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        places = registry_updates(
            (row.prepared.event.place, row.place_version, row.position)
            for row in plan.rows
            if isinstance(row.prepared.event, Event)
        )
        await conn.execute(
            SQL.append_commit,
            *columns[:7],
            plan.recorded_at,
            *columns[7:],
            *_place_columns(places),
        )

    # --- reads -------------------------------------------------------------------------

    async def page(self, after: int, limit: int, where: EventFilter) -> list[StoredEvent]:
        """Events after a position, in position order."""
        async with self.pool.acquire() as conn:
            arguments = await _page_arguments(conn, after, where)
            if arguments is None:
                return []
            rows = await conn.fetch(SQL.read_events_page, *arguments, limit)
        return [stored_event(r) for r in rows]

    async def stream(
        self, after: int, where: EventFilter, limit: int | None = None
    ) -> AsyncIterator[StoredEvent]:
        """Every selected event after a position, read with a cursor, never all in memory."""
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            arguments = await _page_arguments(conn, after, where)
            if arguments is None:
                return
            cursor = conn.cursor(SQL.read_events_page, *arguments, limit, prefetch=2000)
            async for row in cursor:
                yield stored_event(row)

    async def get(
        self, event_id: uuid.UUID
    ) -> tuple[StoredEvent, list[LinkedFrom], str | None] | None:
        """One event, the events that link to it, and who submitted it.

        ``event_links`` finds the linking events; a link is served only when the linking
        event's payload (which the hash chain vouches for) states it, so a row added to the
        table behind the service's back is never served (and ``verify`` names it).
        """
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(SQL.read_event_by_id, event_id)
            if row is None:
                return None
            links = await conn.fetch(SQL.read_links_to, event_id)
        linked: list[LinkedFrom] = []
        for r in links:
            if (event_id, r["relation"]) in stated_links(r["payload"]):
                linked.append(
                    LinkedFrom(id=r["id"], position=r["position"], relation=r["relation"])
                )
            else:
                log.warning(
                    "integrity_link_not_in_payload",
                    event_id=str(event_id),
                    linked_from=str(r["id"]),
                    position=r["position"],
                    relation=r["relation"],
                )
        return stored_event(row), linked, row["submitter"]

    async def head(self) -> tuple[int, bytes]:
        """The log's last position and hash."""
        row = await self.pool.fetchrow(SQL.read_head)
        assert row is not None  # the migration inserts the head row, a trigger keeps it
        return row["position"], bytes(row["hash"])

    async def places_for_matching(
        self,
    ) -> list[tuple[str, str, tuple[str, ...], float | None, float | None]]:
        """Every registered place as the importers' place matching needs it: id, name,
        aliases, lat, lon."""
        rows = await self.pool.fetch(SQL.read_places_for_matching)
        return [(r["id"], r["name"], tuple(r["aliases"]), r["lat"], r["lon"]) for r in rows]

    async def side_registry(self, position: int) -> SideRegistry:
        """The side registry as known at ``position``: its events up to it, folded."""
        rows = await self.pool.fetch(SQL.read_registry, position)
        return registry_after(EMPTY, [registry_row(r) for r in rows])

    async def schema_revision(self) -> str | None:
        """The alembic revision the database is at."""
        value = await self.pool.fetchval(SQL.read_schema_revision)
        return None if value is None else str(value)


async def _page_arguments(conn: Connection, after: int, where: EventFilter) -> list[Any] | None:
    """The arguments of ``read_events_page.sql`` but the limit; None when the filter names
    places through the registry and there are none (the answer is empty)."""
    places: list[str] | None = None
    if where.by_places:
        box = where.bbox
        corners = (box.west, box.south, box.east, box.north) if box else (None,) * 4
        places = [
            r["id"] for r in await conn.fetch(SQL.read_places_within, where.country, *corners)
        ]
        if not places:
            return None
    return [
        after, where.place, where.type, where.source, where.side, where.actor, places,
        where.valid_from, where.valid_to, where.recorded_from, where.recorded_to,
    ]  # fmt: skip


def registry_row(row: asyncpg.Record) -> RegistryRow:
    """A registry event of the log as the registry reads it."""
    return RegistryRow(
        position=row["position"],
        commit_position=row["commit_position"],
        version=row["place_version"],
        submitter=row["submitter"],
        event=registry_decoder.decode(row["payload"]),
    )


def _place_columns(updates: Iterable[PlaceUpdate]) -> list[list[Any]]:
    """The registry updates as the column arrays ``frontline_append`` unnests."""
    columns: list[list[Any]] = [[] for _ in range(11)]
    for u in updates:
        values = (
            u.id, u.name, u.kind, u.lat, u.lon, u.parent, ALIAS_SEPARATOR.join(sorted(u.aliases)),
            u.precision, u.version, u.first_position, u.last_position,
        )  # fmt: skip
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns
