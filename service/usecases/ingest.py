"""Ingest: events into the log, from a POST body, an NDJSON stream or a source file.

One pipeline for every bulk form (NDJSON lines; ACLED, UCDP GED and PLOVER rows): each unit
(a line, a row) is prepared into one append request, or refused with its line and reason;
requests are committed in chunks of about ``chunk_size`` events, the next chunk prepared
while the previous one is written; one tally counts what was stored, what was already
stored, what was refused and what was flagged. A unit is stored whole or not at all, and a
bad one never stops or loses the good ones. A POST body (one event or an atomic batch) is
decoded and prepared here too, then joins the group committer's queue.

The store keeps the log's persistence (``EventStore.append_group``, group commit); the
formats' readers are pure (``service.interop``); this module is the job between them.
"""

from __future__ import annotations

import asyncio
import heapq
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import structlog

from contracts.events import Event, Expectation
from contracts.responses import ImportResult, Receipt, RejectedLine, UnmappedLabel
from service.domain.append import AppendRequest
from service.domain.errors import FrontlineError, InvalidEvent, WrongExpectedVersion
from service.domain.records import PreparedEvent, prepare_event
from service.domain.validation import decode_events, decode_line, keyed
from service.errors import ImportStopped, ImportStoppedUnavailable, NotReady
from service.interop.places import KnownPlace, PlaceIndex
from service.interop.prepare import Refused, prepare_row
from service.interop.rows import SourceRow
from service.store.appender import GroupCommitter
from service.store.events import EventStore, Outcome

log = structlog.get_logger(__name__)

#: Units prepared between two chances for the chunk in flight to move on.
YIELD_EVERY: Final = 16

U = TypeVar("U")


# --- One append: a POST body -------------------------------------------------------------


def _prepare_events(events: list[Event], batch: bool) -> tuple[PreparedEvent, ...]:
    prepared = []
    for index, event in enumerate(events):
        try:
            prepared.append(prepare_event(event))
        except InvalidEvent as error:
            if batch:
                where = f"events[{index}].{error.field}" if error.field else f"events[{index}]"
                raise InvalidEvent(error.detail, field=where) from None
            raise
    return tuple(prepared)


async def append_body(
    committer: GroupCommitter,
    body: bytes,
    *,
    max_batch: int,
    idempotency_key: str | None = None,
    submitter: str | None = None,
    admin: bool = False,
) -> list[Receipt]:
    """Append one event or an atomic batch (``{"events": [...], "expect": [...]}``) given
    as JSON; its receipts, or the FrontlineError that refused it (nothing written). An
    event without an ``id`` gets the one ``idempotency_key`` derives for its index, when one
    is given (``contracts.idempotency``), else a random one."""
    events, expect, is_batch = decode_events(body, max_batch)
    events = [keyed(event, idempotency_key, index) for index, event in enumerate(events)]
    request = AppendRequest(
        events=_prepare_events(events, batch=is_batch),
        expect=expect,
        submitter=submitter,
        admin=admin,
    )
    return await committer.append(request)


# --- Reading a byte stream as lines ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line over the limit: its bytes were skipped as they came; ``size`` is its length."""

    size: int
    limit: int


async def split_lines(
    chunks: AsyncIterator[bytes], max_line: int | None = None
) -> AsyncIterator[tuple[int, bytes | LineTooLong]]:
    """Numbered lines of a byte stream (1-based), blank lines skipped, never all in memory.

    A line that spans chunks is kept as its pieces and joined once when it ends, so it costs
    its length, not its length times the chunks it spans. A line over ``max_line`` bytes is
    not kept at all: its bytes are dropped as they come, and it is given as a
    :class:`LineTooLong` under its number (memory stays within one chunk and ``max_line``).
    """
    limit = max_line if max_line is not None else sys.maxsize
    number = 0
    pieces: list[bytes] = []  # the unfinished line, unless it is already over the limit
    size = 0  # the unfinished line's length so far

    def line_of(whole: bytes) -> bytes | LineTooLong | None:
        """A complete line as split_lines gives it; None for a blank one."""
        if len(whole) > limit:
            return LineTooLong(len(whole), limit)
        return whole if whole and not whole.isspace() else None

    def ending(tail: bytes) -> bytes | LineTooLong | None:
        """The unfinished line, ended by ``tail``."""
        if size + len(tail) > limit:
            return LineTooLong(size + len(tail), limit)
        return line_of(b"".join((*pieces, tail)) if pieces else tail)

    async for chunk in chunks:
        if not chunk:
            continue
        parts = chunk.split(b"\n")
        if len(parts) > 1:
            number += 1
            first = ending(parts[0])
            if first is not None:
                yield number, first
            for whole in parts[1:-1]:
                number += 1
                line = line_of(whole)
                if line is not None:
                    yield number, line
            pieces, size = [], 0
        tail = parts[-1]
        size += len(tail)
        if size <= limit:
            pieces.append(tail)
        else:
            pieces.clear()
    last = ending(b"")
    if last is not None:
        yield number + 1, last


# --- The pipeline's parts ----------------------------------------------------------------


class Listing:
    """The first ``limit`` items by line, whatever order they arrive in; all are counted.

    An import lists its rejected lines (and flagged rows) this way: its answer says how many
    there were and lists the first ones, so that a file of a million bad lines gives a small
    answer and holds little memory.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit if limit is not None else sys.maxsize
        self.count = 0
        self._kept: list[tuple[int, int, RejectedLine]] = []  # a heap: the latest line first

    def add(self, item: RejectedLine) -> None:
        """Count an item, and keep it while it is among the first ``limit``."""
        self.count += 1
        kept = self._kept
        if len(kept) < self.limit:
            heapq.heappush(kept, (-item.line, -self.count, item))
        elif item.line < -kept[0][0]:  # before the latest kept (most come after it: cheap)
            heapq.heapreplace(kept, (-item.line, -self.count, item))

    def items(self) -> list[RejectedLine]:
        """The items kept, by line (then in arrival order)."""
        return [item for _, _, item in sorted(self._kept, reverse=True)]


@dataclass(slots=True)
class Entry:
    """One unit (a line, a row) on its way to the log: its request, and what the answer
    says of it should it be refused or flagged."""

    line: int
    request: AppendRequest
    event_id: uuid.UUID | None = None
    """Named when the log refuses the unit (an NDJSON line's event)."""
    source_id: str | None = None
    """The source's own id of a row."""
    flags: Sequence[str] = ()
    flagged_field: str | None = None
    unit: object = None
    """What the entry was prepared from, to prepare it again (a row whose new place another
    import registered meanwhile)."""


@dataclass(slots=True)
class Chunk:
    """Entries committed together."""

    items: list[Entry] = field(default_factory=list)
    requests: list[AppendRequest] = field(default_factory=list)
    events: int = 0

    def add(self, entry: Entry) -> None:
        self.items.append(entry)
        self.requests.append(entry.request)
        self.events += len(entry.request.events)


async def outlast(task: asyncio.Future[Any]) -> None:
    """Wait for ``task`` to end, even if the waiter is cancelled meanwhile (that cancellation
    is raised once the task has ended). Never cancels ``task`` itself: a chunk whose write is
    cancelled half-way might still commit (the cancellation can land while COMMIT is on its
    way), so the only sure way to know its fate is to let it finish."""
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


class ChunkWriter:
    """One chunk written while the next is prepared, and never a write after its import ends.

    ``send`` waits for the chunk in flight, then starts writing the next; ``finish`` waits
    for the last. Whatever stops an import early (a bad line the parser chokes on, a client
    that goes away, the database, a cancellation), :meth:`stop` waits for the chunk in flight
    to end, committed or not, before the import answers: a request that has failed never
    stores anything afterwards.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._writing: asyncio.Task[list[Outcome]] | None = None
        self._chunk: Chunk | None = None
        self.failed: Chunk | None = None
        """The chunk whose write raised (rolled back), if one did."""

    @property
    def busy(self) -> bool:
        """Whether a chunk is being written."""
        return self._writing is not None

    async def send(self, chunk: Chunk) -> tuple[Chunk, list[Outcome]] | None:
        """Start writing ``chunk`` once the one in flight has ended; that one's outcomes."""
        done = await self.finish()
        self._chunk = chunk
        self._writing = asyncio.create_task(self.store.append_group(chunk.requests))
        return done

    async def finish(self) -> tuple[Chunk, list[Outcome]] | None:
        """Wait for the chunk in flight; its outcomes (its write's error is raised)."""
        writing, chunk = self._writing, self._chunk
        if writing is None or chunk is None:
            return None
        await outlast(writing)
        self._writing = self._chunk = None
        if writing.cancelled():  # only when the loop itself shuts down
            self.failed = chunk
            raise RuntimeError("the chunk's write was cancelled")
        if writing.exception() is not None:
            self.failed = chunk
        return chunk, writing.result()

    async def stop(self) -> tuple[Chunk, list[Outcome]] | None:
        """After a failure: wait for the chunk in flight; its outcomes if it committed."""
        try:
            return await self.finish()
        except Exception:  # the failure that stopped the import is the one told
            return None


@dataclass(slots=True)
class Tally:
    """What an import did with each unit: events stored and already stored, units refused
    (listed in ``errors``) and units stored but flagged (listed in ``flags``)."""

    errors: Listing
    flags: Listing
    accepted: int = 0
    duplicate: int = 0
    retry: list[Entry] | None = None
    """Entries refused because a place they registered was registered meanwhile (409), to
    prepare again against the registry as it is now; None when the import does not retry."""
    retried: bool = False
    """Whether this is the second try of such entries (a 409 then rejects them)."""
    named: dict[str, int] = field(default_factory=dict)
    """The side names the events stored (or already stored) use, with their events."""
    known: frozenset[str] | None = None
    """The side registry's names at the import's end (set once it has ended): the names
    outside it are listed as unmapped."""

    def reject(self, refused: RejectedLine) -> None:
        self.errors.add(refused)

    def count(self, done: tuple[Chunk, list[Outcome]] | None) -> None:
        """Count a written chunk's outcomes, entry by entry."""
        if done is None:
            return
        chunk, outcomes = done
        for item, outcome in zip(chunk.items, outcomes, strict=True):
            if isinstance(outcome, FrontlineError):
                if isinstance(outcome, WrongExpectedVersion) and self.retry is not None:
                    self.retry.append(item)
                elif isinstance(outcome, WrongExpectedVersion) and self.retried:
                    self.errors.add(
                        RejectedLine(
                            line=item.line,
                            reason=f"place {outcome.place!r} was registered by another import "
                            "while this one ran, twice: import the file again",
                            source_id=item.source_id,
                        )
                    )
                else:
                    self.errors.add(
                        RejectedLine(
                            line=item.line,
                            reason=outcome.detail,
                            field=outcome.field,
                            id=item.event_id,
                            source_id=item.source_id,
                        )
                    )
                continue
            # A unit the log refused is listed as rejected only, never also as flagged.
            if item.flags:
                self.flags.add(
                    RejectedLine(
                        line=item.line,
                        reason="; ".join(item.flags),
                        field=item.flagged_field,
                        source_id=item.source_id,
                    )
                )
            self.name_sides(item.request)
            for receipt in outcome:
                if receipt.duplicate:
                    self.duplicate += 1
                else:
                    self.accepted += 1

    def name_sides(self, request: AppendRequest) -> None:
        """Count the side names (side and opponent) of a stored entry's events."""
        named = self.named
        for prepared in request.events:
            event = prepared.event
            side = getattr(event, "side", None)
            opponent = getattr(event, "opponent", None)
            if side is not None:
                named[side] = named.get(side, 0) + 1
            if opponent is not None and opponent != side:
                named[opponent] = named.get(opponent, 0) + 1

    def unmapped(self) -> list[UnmappedLabel]:
        """The side names outside the registry (once ``known`` is set), most used first."""
        if self.known is None:
            return []
        return [
            UnmappedLabel(side=name, events=events)
            for name, events in sorted(self.named.items(), key=lambda item: (-item[1], item[0]))
            if name not in self.known
        ]

    def result(self, last_position: int | None) -> ImportResult:
        unmapped = self.unmapped()
        return ImportResult(
            accepted=self.accepted,
            duplicate=self.duplicate,
            rejected=self.errors.count,
            errors=self.errors.items(),
            last_position=last_position,
            flagged=self.flags.count,
            flags=self.flags.items(),
            unmapped=len(unmapped),
            unmapped_sides=unmapped[: self.errors.limit],
        )


def stopped(
    error: BaseException, result: ImportResult, through_line: int, what: str
) -> ImportStopped:
    """The error an import that ``error`` stopped answers with: what was stored, and how far
    the fate of every line is known."""
    cause = error.detail if isinstance(error, FrontlineError) else type(error).__name__
    detail = (
        f"the {what} stopped before its end ({cause}); every line up to {through_line} has its "
        f"fate in `result` (accepted {result.accepted}, duplicate {result.duplicate}, "
        f"rejected {result.rejected}); nothing after line {through_line} was stored"
    )
    kind = ImportStoppedUnavailable if isinstance(error, NotReady) else ImportStopped
    return kind(detail, result=result, through_line=through_line)


def log_stop(
    error: BaseException, result: ImportResult, through_line: int, *, request_gone: bool = False
) -> None:
    """One line for an import that stopped; the traceback when no one expected the error (not
    for a request that is gone: a client that went away is not the server's error)."""
    unexpected = (
        not request_gone and isinstance(error, Exception) and not isinstance(error, FrontlineError)
    )
    (log.error if unexpected else log.warning)(
        "import_stopped",
        through_line=through_line,
        accepted=result.accepted,
        duplicate=result.duplicate,
        rejected=result.rejected,
        error_type=type(error).__name__,
        exc_info=error if unexpected else None,
    )


def through(consumed: int, unsettled: Iterable[Chunk | None]) -> int:
    """The last line whose fate is known: the line before the first one of a chunk not
    stored (failed, or never sent), else the last line read."""
    firsts = [chunk.items[0].line for chunk in unsettled if chunk is not None and chunk.items]
    return min(firsts) - 1 if firsts else consumed


Prepare = Callable[[int, U], "Entry | RejectedLine"]
"""A unit (with the line it starts on) as an entry, or the reason it is refused."""


# --- The pipeline ------------------------------------------------------------------------


async def _ingest(
    store: EventStore,
    units: AsyncIterator[tuple[int, U]],
    preparer: Callable[[], Awaitable[Prepare[U]]],
    tally: Tally,
    *,
    chunk_size: int,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Append every unit ``preparer``'s function makes an entry of, committed in chunks of
    about ``chunk_size`` events, the next chunk prepared while the previous one is written;
    the refused ones are tallied with their line and reason.

    ``preparer`` is called once before the first unit (and once more to prepare again the
    entries a 409 sent back, when ``tally.retry`` collects them). ``progress`` is told the
    line each unit starts on. An import either answers with the fate of every unit, or
    raises :class:`ImportStopped` (the fate of every line up to ``through_line``; nothing
    after it stored), or, when the request itself is gone (reading ``units`` failed or was
    cancelled), raises that, once the chunk being written has ended: nothing is ever stored
    after the import has failed.
    """
    writer = ChunkWriter(store)
    chunk = Chunk()
    consumed = 0
    read = 0
    reading = False
    try:
        prepare = await preparer()
        reading = True
        async for number, unit in units:
            reading = False
            consumed = number
            read += 1
            if progress is not None:
                progress(number)
            entry = prepare(number, unit)
            if isinstance(entry, Entry):
                chunk.add(entry)
            else:
                tally.reject(entry)
            if writer.busy and read % YIELD_EVERY == 0:
                # Let the chunk being written move on (its next round trip to PostgreSQL) while
                # this one is prepared: Python and PostgreSQL then work at the same time.
                await asyncio.sleep(0)
            if chunk.events >= chunk_size:
                tally.count(await writer.send(chunk))
                chunk = Chunk()
            reading = True
        reading = False
        tally.count(await writer.send(chunk) if chunk.items else None)
        chunk = Chunk()
        tally.count(await writer.finish())
        if tally.retry:
            await _again(store, preparer, tally)
        last_position, _ = await store.head()
        if tally.named:
            tally.known = (await store.side_registry(last_position)).known_names()
    except BaseException as error:
        tally.count(await writer.stop())
        for entry in tally.retry or ():
            # Refused once because another import registered their place meanwhile, and not
            # tried again: their fate is known (not stored).
            tally.errors.add(
                RejectedLine(
                    line=entry.line,
                    reason="not stored: the import stopped before this row could be retried",
                    source_id=entry.source_id,
                )
            )
        through_line = through(consumed, (writer.failed, chunk))
        result = tally.result(None)
        log_stop(error, result, through_line, request_gone=reading)
        if reading or not isinstance(error, Exception):
            # The request itself is gone (its body could not be read, or it was cancelled):
            # nobody is left to answer, and the server tells the client's abort as such.
            raise
        raise stopped(error, result, through_line, "import") from error
    return tally.result(last_position)


async def _again(
    store: EventStore, preparer: Callable[[], Awaitable[Prepare[U]]], tally: Tally
) -> None:
    """Prepare again, against the registry as it is now, the entries a 409 sent back (their
    new place another import registered meanwhile), and append them once more; never merged
    into that place."""
    entries = tally.retry or []
    prepare = await preparer()
    chunk = Chunk()
    for old in entries:
        entry = prepare(old.line, old.unit)  # type: ignore[arg-type]  # the unit it came from
        if isinstance(entry, Entry):
            chunk.add(entry)
        else:
            tally.reject(entry)
    outcomes = await store.append_group(chunk.requests) if chunk.items else []
    tally.retry, tally.retried = None, True
    tally.count((chunk, outcomes))


# --- NDJSON ------------------------------------------------------------------------------


async def import_ndjson(
    store: EventStore,
    lines: AsyncIterator[tuple[int, bytes | LineTooLong]],
    *,
    chunk_size: int,
    submitter: str | None = None,
    admin: bool = False,
    max_errors: int | None = None,
    idempotency_key: str | None = None,
) -> ImportResult:
    """Append every good line of an NDJSON stream (:func:`split_lines`), committed in chunks;
    report the bad ones.

    Each line is its own request: a bad line is rejected with its number and reason and
    never stops or loses the good ones. A line that withdraws an event another key appended
    is such a line, unless ``admin``; a line may withdraw an event of an earlier line of the
    same import. The answer counts every rejected line and lists the first ``max_errors``.
    An event without an ``id`` gets the one ``idempotency_key`` derives for its line, when
    one is given (``contracts.idempotency``), else a random one. How it stops: see
    :func:`_ingest`.
    """

    def prepare(number: int, line: bytes | LineTooLong) -> Entry | RejectedLine:
        try:
            if isinstance(line, LineTooLong):
                raise InvalidEvent(
                    f"the line is {line.size} bytes; lines of at most {line.limit} bytes "
                    "are accepted (FRONTLINE_MAX_LINE)"
                )
            prepared = prepare_event(keyed(decode_line(line), idempotency_key, number - 1))
        except FrontlineError as error:
            return RejectedLine(line=number, reason=error.detail, field=error.field)
        request = AppendRequest(events=(prepared,), submitter=submitter, admin=admin)
        return Entry(number, request, event_id=prepared.id)

    async def preparer() -> Prepare[bytes | LineTooLong]:
        return prepare

    tally = Tally(Listing(max_errors), Listing(max_errors))
    return await _ingest(store, lines, preparer, tally, chunk_size=chunk_size)


# --- Source files (ACLED, UCDP GED, PLOVER) ----------------------------------------------


class _NewPlaces:
    """The expectations that keep an import from writing into a place another import
    registered meanwhile under the same id (two same-named places read from two registry
    snapshots): the first row of a place this import registers expects the place stream to
    be new, each later one the version this import's own rows have brought it to."""

    def __init__(self, known: list[KnownPlace]) -> None:
        self._known = {p.id for p in known}
        self._events: dict[str, int] = {}

    def expect(self, prepared: tuple[PreparedEvent, ...]) -> tuple[Expectation, ...]:
        expectations = []
        for place in dict.fromkeys(p.place_id for p in prepared):
            if place not in self._known:
                version = self._events.get(place, 0)
                expectations.append(Expectation(place=place, version=version or "none"))
        for p in prepared:
            if p.place_id not in self._known:
                self._events[p.place_id] = self._events.get(p.place_id, 0) + 1
        return tuple(expectations)


async def _rows_of(rows: Iterable[SourceRow]) -> AsyncIterator[tuple[int, SourceRow]]:
    for row in rows:
        yield row.line, row


async def import_rows(
    store: EventStore,
    rows: Iterable[SourceRow],
    *,
    chunk_size: int,
    submitter: str | None = None,
    progress: Callable[[int], None] | None = None,
    max_errors: int | None = None,
) -> ImportResult:
    """Append the events of every mappable row of a source file, committed in chunks;
    report the others.

    The place registry is read once per import; each row is prepared (``interop.prepare``:
    its place matched, kept up to date with the places the import itself registers, its
    events through the contract decoder) into one append request: a row is stored whole or
    not at all. Event ids derive from the source's own ids, so the same file imported twice
    stores nothing new. A row whose place the import registers expects that place stream to
    be as the import left it (new, for its first row): should another import have
    registered a place under the same id meanwhile, the row is resolved once more against
    the registry as it is then, never merged into that place.

    ``progress`` is told the line each row starts on, as rows are prepared. Callers read
    the file whole first (``list(read(data))``), so that a file unreadable as a whole stores
    nothing. The answer counts every rejected and flagged row and lists the first
    ``max_errors`` of each. How it stops: see :func:`_ingest`.
    """

    started = datetime.now(UTC)

    async def preparer() -> Prepare[SourceRow]:
        known = [KnownPlace(*place) for place in await store.places_for_matching()]
        index, new_places = PlaceIndex(known), _NewPlaces(known)

        def prepare(line: int, row: SourceRow) -> Entry | RejectedLine:
            outcome = prepare_row(row, index, now=started)
            if isinstance(outcome, Refused):
                return RejectedLine(
                    line=line, reason=outcome.reason, field=outcome.field, source_id=row.source_id
                )
            prepared, flags, flagged_field = outcome
            request = AppendRequest(
                events=prepared, expect=new_places.expect(prepared), submitter=submitter
            )
            return Entry(line, request, None, row.source_id, flags, flagged_field, row)

        return prepare

    tally = Tally(Listing(max_errors), Listing(max_errors), retry=[])
    return await _ingest(
        store, _rows_of(rows), preparer, tally, chunk_size=chunk_size, progress=progress
    )


__all__ = [
    "LineTooLong",
    "Listing",
    "append_body",
    "import_ndjson",
    "import_rows",
    "split_lines",
]
