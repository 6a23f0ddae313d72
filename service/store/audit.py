"""The audit's reads: the head, and a verification over one consistent snapshot of the log:
the hash chain, the links against the payloads, the projections against a refold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

import asyncpg

from contracts.audit import (
    LinkFailure,
    LinksReport,
    ProjectionFailure,
    ProjectionsReport,
    SignedHead,
    VerifyFailure,
    VerifyReport,
)
from service.domain.audit import (
    GENESIS_HASH,
    ChainVerifier,
    Failure,
    Head,
    LinkMismatch,
    LinkRow,
    LinkVerifier,
    RowMismatch,
    SigningKey,
    StoredSegment,
    check_place,
    check_saved_head,
    key_id,
    sample_places,
)
from service.domain.policy import SERVED, Policy
from service.domain.registry import RegistryHistory
from service.errors import InvalidParameter
from service.store.events import registry_row
from service.store.queries import SQL

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

PREFETCH: Final = 5000
#: Positions below and above any the log can hold (event_links rows outside the log count).
LOWEST: Final = -(2**63)
HIGHEST: Final = 2**63 - 1
#: Events refolded together in a worker thread, so that the event loop keeps serving while
#: verify refolds (a thread, not a process: the refold is short per place, and the loop
#: needs only its turns, which the interpreter's switch interval gives it).
REFOLD_BATCH: Final = 2000

ProjectionMode = Literal["full", "sample", "off"]
PROJECTION_MODES: Final[tuple[ProjectionMode, ...]] = ("sample", "full", "off")


@dataclass(frozen=True, slots=True)
class SavedHead:
    """A head an auditor saved earlier: its position and hash."""

    position: int
    hash: str


class AuditReader:
    """Reads the log for the audit, each answer from one consistent snapshot."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        signing: SigningKey | None,
        *,
        sample_events: int = 10_000,
        policy: Policy = SERVED,
    ) -> None:
        self.pool = pool
        self.signing = signing
        self.sample_events = sample_events
        """About how many events ``projections="sample"`` refolds (FRONTLINE_VERIFY_SAMPLE)."""
        self.policy = policy
        """The policy the service projects with: the refold's."""

    def sign(self, head: Head) -> SignedHead:
        """The head as the API shows it, signed when there is a key."""
        if self.signing is None:
            return SignedHead(
                position=head.position,
                hash=head.hash,
                recorded_at=head.recorded_at,
                algorithm=None,
                signature=None,
                key_id=None,
            )
        return SignedHead(
            position=head.position,
            hash=head.hash,
            recorded_at=head.recorded_at,
            algorithm="Ed25519",
            signature=self.signing.sign(head),
            key_id=key_id(self.signing.public),
        )

    async def head(self) -> SignedHead:
        """The log's head now."""
        async with self.pool.acquire() as conn:
            return self.sign(await _head(conn))

    async def verify(
        self,
        start: int | None,
        end: int | None,
        saved: SavedHead | None = None,
        projections: ProjectionMode = "sample",
    ) -> VerifyReport:
        """Recompute the chain over positions ``start``..``end`` (default: the whole log),
        compare ``event_links`` with the payloads over the same positions, and compare the
        projection rows with a refold of the log (``projections``: every place, a random
        sample of places, or none; always the whole log, whatever the range)."""
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            head = await _head(conn)
            first = 1 if start is None else start
            last = head.position if end is None else end
            if first < 1 or last < first - 1:
                raise InvalidParameter(
                    f"from ({first}) must be at least 1 and at most to + 1 ({last + 1})",
                    field="from" if start is not None else "to",
                )
            if last > head.position:
                raise InvalidParameter(
                    f"to ({last}) is past the log's head ({head.position})", field="to"
                )
            chain = await _verify(conn, first, last, whole=end is None)
            verifier, failure = chain.verifier, chain.failure
            if failure is None and end is None and verifier.expected <= head.position:
                failure = Failure(
                    verifier.expected,
                    f"position {verifier.expected} is missing: the head says {head.position}",
                )
            if failure is None and end is None and verifier.last_hash.hex() != head.hash:
                failure = Failure(head.position, "the head's hash is not the chain's last hash")
            saved_state: Literal["holds", "broken", "not given"] = "not given"
            if saved is not None:
                stored = (
                    GENESIS_HASH
                    if saved.position == 0
                    else await conn.fetchval(SQL.read_hash_at, saved.position)
                )
                broken = check_saved_head(
                    Head(position=saved.position, hash=saved.hash, recorded_at=None),
                    None if stored is None else bytes(stored),
                    head.position,
                )
                saved_state = "holds" if broken is None else "broken"
                if broken is not None and (failure is None or saved.position < failure.position):
                    failure = Failure(saved.position, broken)
            projected = await self._projections(conn, projections)
        links = _links_report(chain.links, chain.link_failure)
        return VerifyReport(
            ok=failure is None and links.ok and projected.ok is not False,
            from_position=first,
            to_position=last,
            checked=verifier.checked,
            head=self.sign(head),
            failure=None if failure is None else VerifyFailure(failure.position, failure.reason),
            saved_head=saved_state,
            links=links,
            projections=projected,
        )

    async def _projections(self, conn: Connection, mode: ProjectionMode) -> ProjectionsReport:
        """The projection rows against a refold of the log up to where they have reached."""
        state = await conn.fetchrow(SQL.read_projection_state)
        assert state is not None  # the migration inserts the row
        check = _ProjectionCheck(mode, self.policy, state["position"])
        check.sides = RegistryHistory(
            registry_row(r) for r in await conn.fetch(SQL.read_registry, check.position)
        )
        check.clusters = check.sides.clusters(check.position)
        check.conn = conn
        made_by = (state["policy"], state["policy_version"])
        if mode == "off":
            return check.report()
        if check.position > 0 and made_by != (self.policy.name, self.policy.version):
            # (At position 0 the projections claim nothing: a new database's row names the
            # policy of the migration that made it until the first commit.)
            check.failure = RowMismatch(
                None,
                None,
                None,
                None,
                None,
                f"the projections were made by policy {made_by[0]} version {made_by[1]}; the "
                f"service serves {self.policy.name} version {self.policy.version}: run "
                "`frontline rebuild`",
            )
            check.differing = 1
            return check.report()
        if mode == "full":
            rows = conn.cursor(SQL.read_projection_check_all, check.position, prefetch=PREFETCH)
            await check.run(rows)
            return check.report()
        counts = await conn.fetch(SQL.read_place_event_counts, check.position)
        check.places = len(counts)
        chosen = sample_places([(r["place_id"], r["events"]) for r in counts], self.sample_events)
        check.too_large = sum(1 for r in counts if r["events"] > self.sample_events)
        if chosen:
            rows = conn.cursor(
                SQL.read_projection_check_places, check.position, chosen, prefetch=PREFETCH
            )
            await check.run(rows)
        # Rows of places without events are found by their absence from the log, whatever
        # the sample.
        stray = await conn.fetchrow(SQL.read_segments_without_events, check.position)
        if stray is not None:
            check.differing += stray["places"]
            if check.failure is None:
                check.failure = RowMismatch(
                    stray["place_id"],
                    stray["valid_from"],
                    stray["valid_to"],
                    stray["known_from"],
                    stray["known_to"],
                    f"segments holds rows for a place with no event up to position "
                    f"{check.position}",
                )
        return check.report()


@dataclass(slots=True)
class _Place:
    """One place's events and stored rows, as read."""

    place: str
    events: list[tuple[int, str]] = field(default_factory=list)
    rows: list[StoredSegment] = field(default_factory=list)
    streams: list[str] | None = None
    """For a place a merge joined with others: the stream of each event (``events`` then
    holds every joined stream's)."""


@dataclass(slots=True)
class _ProjectionCheck:
    """Reads places (events, then rows) and refolds them in batches, in a worker thread."""

    mode: ProjectionMode
    policy: Policy
    position: int
    places: int = 0
    places_checked: int = 0
    events_checked: int = 0
    rows_checked: int = 0
    differing: int = 0
    too_large: int = 0
    failure: RowMismatch | None = None
    sides: RegistryHistory = field(default_factory=RegistryHistory)
    """The side registry's history up to :attr:`position` (the refold reads through it)."""
    clusters: dict[str, frozenset[str]] = field(default_factory=dict)
    """The places a merge joined with others, and the streams their refold reads."""
    conn: Connection | None = None
    """Where the events of joined streams are read."""

    async def run(self, rows: AsyncIterable[asyncpg.Record]) -> None:
        batch: list[_Place] = []
        size = 0
        current: _Place | None = None
        async for row in rows:
            place = row["place_id"]
            if current is None or current.place != place:
                current = _Place(place)
                batch.append(current)
            if row["part"] == 0:
                current.events.append((row["commit_position"], row["text"]))
                size += 1
            else:
                current.rows.append(_segment(row))
            if size >= REFOLD_BATCH and len(batch) > 1:
                # Every place but the one being read is complete.
                await self._refold(batch[:-1])
                batch, size = batch[-1:], len(batch[-1].events)
        if batch:
            await self._refold(batch)

    async def _refold(self, places: list[_Place]) -> None:
        for place in places:
            if place.place in self.clusters and self.conn is not None:
                # Its timeline reads the streams merged with it: their events, in order.
                own = len(place.events)
                rows = await self.conn.fetch(
                    SQL.read_streams_log, sorted(self.clusters[place.place]), self.position
                )
                place.events = [(r["commit_position"], r["payload"]) for r in rows]
                place.streams = [r["place_id"] for r in rows]
                self.events_checked -= len(place.events) - own
        found = await asyncio.to_thread(
            _check_places, places, self.policy, self.sides, self.position
        )
        for place, mismatch in zip(places, found, strict=True):
            if self.mode == "full" and place.events:
                self.places += 1  # a place with rows and no event is not one of the log's
            self.places_checked += 1
            self.events_checked += len(place.events)
            self.rows_checked += len(place.rows)
            if mismatch is not None:
                self.differing += 1
                if self.failure is None:
                    self.failure = mismatch

    def report(self) -> ProjectionsReport:
        failure = self.failure
        return ProjectionsReport(
            mode=self.mode,
            ok=None if self.mode == "off" else failure is None,
            policy=f"{self.policy.name}@{self.policy.version}",
            position=self.position,
            places=self.places,
            places_checked=self.places_checked,
            events_checked=self.events_checked,
            rows_checked=self.rows_checked,
            differing=self.differing,
            too_large=self.too_large,
            failure=None
            if failure is None
            else ProjectionFailure(
                place=failure.place,
                valid_from=failure.valid_from,
                valid_to=failure.valid_to,
                known_from=failure.known_from,
                known_to=failure.known_to,
                reason=failure.reason,
            ),
        )


def _check_places(
    places: list[_Place], policy: Policy, sides: RegistryHistory, upto: int
) -> list[RowMismatch | None]:
    return [check_place(p.place, p.events, p.rows, policy, sides, upto, p.streams) for p in places]


def _segment(row: asyncpg.Record) -> StoredSegment:
    return StoredSegment(
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
        known_from=row["n"],
        known_to=row["known_to"],
        controller=row["controller"],
        status=row["status"],
        status_by=row["status_by"],
        disputed=row["disputed"],
        confidence=row["confidence"],
        basis=row["basis"],
        body=row["text"].encode(),
    )


def _links_report(verifier: LinkVerifier, mismatch: LinkMismatch | None) -> LinksReport:
    return LinksReport(
        ok=mismatch is None,
        checked=verifier.checked,
        rows=verifier.rows,
        failure=None
        if mismatch is None
        else LinkFailure(
            position=mismatch.position,
            id=mismatch.id,
            target=mismatch.target,
            relation=mismatch.relation,
            reason=mismatch.reason,
        ),
    )


async def _head(conn: Connection) -> Head:
    row = await conn.fetchrow(SQL.read_head_detail)
    assert row is not None  # the migration inserts the head row
    return Head(
        position=row["position"], hash=bytes(row["hash"]).hex(), recorded_at=row["recorded_at"]
    )


@dataclass(slots=True)
class _Chain:
    """What the pass over the log found: the chain's and the links' verifiers and failures."""

    verifier: ChainVerifier
    failure: Failure | None = None
    links: LinkVerifier = field(default_factory=LinkVerifier)
    link_failure: LinkMismatch | None = None


class _LinkRows:
    """The rows of event_links in position order, taken one position at a time.

    ``next_position`` is the position of the first row still unread (HIGHEST when none is
    left), known without an await once :meth:`fill` ran: most events have no link, and the
    pass over the log then skips them with one comparison.
    """

    def __init__(self, rows: AsyncIterable[asyncpg.Record]) -> None:
        self._rows = rows.__aiter__()
        self._next: LinkRow | None = None
        self.next_position = HIGHEST

    async def fill(self) -> None:
        """Read the next row, if the last one was taken."""
        if self._next is None:
            try:
                row = await anext(self._rows)
            except StopAsyncIteration:
                self.next_position = HIGHEST
                return
            self._next = LinkRow(row["position"], row["id"], row["target"], row["relation"])
            self.next_position = self._next.position

    def first(self) -> LinkRow | None:
        """The first row still unread (after :meth:`fill`)."""
        return self._next

    async def at(self, position: int) -> list[LinkRow]:
        """Every row at ``position`` (none may be before it)."""
        found: list[LinkRow] = []
        while self._next is not None and self._next.position == position:
            found.append(self._next)
            self._next = None
            await self.fill()
        return found


async def _verify(conn: Connection, first: int, last: int, *, whole: bool) -> _Chain:
    prev = GENESIS_HASH
    if first > 1:
        stored = await conn.fetchval(SQL.read_hash_at, first - 1)
        if stored is None:
            return _Chain(
                ChainVerifier(first, prev),
                Failure(
                    first - 1, f"position {first - 1} is missing: the chain cannot be followed"
                ),
            )
        prev = bytes(stored)
    chain = _Chain(ChainVerifier(first, prev))
    verifier, links = chain.verifier, chain.links
    # Rows below position 1 or past the head belong to no event: they count when the whole
    # log is verified.
    link_rows = _LinkRows(
        conn.cursor(
            SQL.read_links_for_verify,
            LOWEST if first == 1 else first,
            HIGHEST if whole else last,
            prefetch=PREFETCH,
        )
    )
    await link_rows.fill()
    async for row in conn.cursor(SQL.read_log_for_verify, first, last, prefetch=PREFETCH):
        chain.failure = verifier.check(row)
        if chain.failure is not None:
            return chain
        if chain.link_failure is not None:
            continue
        position = row["position"]
        if not verifier.stated and link_rows.next_position > position:
            links.checked += 1  # no link stated, no row stored: they agree
            continue
        stray = link_rows.first()
        chain.link_failure = (
            links.stray(stray, last)
            if stray is not None and stray.position < position
            else links.check(position, row["id"], verifier.stated, await link_rows.at(position))
        )
    if verifier.expected <= last:
        chain.failure = Failure(
            verifier.expected, f"position {verifier.expected} is missing: the log ends before it"
        )
        return chain
    stray = link_rows.first()
    if chain.link_failure is None and stray is not None:
        chain.link_failure = links.stray(stray, last)
    return chain
