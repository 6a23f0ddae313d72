"""Group commit and bulk import: many requests, few transactions.

Concurrent POSTs queue here; one writer task takes everything queued (up to
``group_max`` requests) and appends it in one transaction, so that many clients share one
commit and one fsync. Each request still succeeds or fails on its own (see
``service.domain.append``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

import asyncpg
import structlog

from contracts.responses import ImportResult, Receipt, RejectedLine
from service.domain.append import AppendRequest
from service.domain.errors import FrontlineError, InvalidEvent
from service.domain.records import PreparedEvent, prepare_event
from service.domain.validation import decode_line, keyed
from service.errors import ImportStopped, ImportStoppedUnavailable, NotReady
from service.store.events import EventStore, Outcome

log = structlog.get_logger(__name__)

#: Driver errors of one connection or one session, not of the database: a group failing
#: with one fails alone (see ``GroupCommitter._unreachable``).
ONE_CONNECTION: Final = (
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CrashShutdownError,
)

#: How long the read telling a database that stopped answering from a long head-lock wait
#: may take (a database that answers reads one row in milliseconds); over it, the queue is
#: failed as for an unreachable database, which costs the queue nothing but a retry.
PROBE_TIMEOUT: Final = 1.0

#: Lines parsed between two chances for the chunk in flight to move on.
YIELD_EVERY = 16

T = TypeVar("T")


@dataclass(slots=True)
class _Pending:
    request: AppendRequest
    done: asyncio.Future[list[Receipt]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _consume(task: asyncio.Task[Any]) -> None:
    """Retrieve a background read's error, so that asyncio does not log it as unheard."""
    if not task.cancelled():
        task.exception()


class GroupCommitter:
    """Queues append requests and writes them in groups.

    Two writers take turns: while one holds the head lock and writes its group, the other
    takes the next queued request, begins its transaction and waits for the lock inside
    PostgreSQL; once it holds the lock, everything that queued meanwhile joins its group. The
    lock thus passes from one commit to the next without a round trip in between, and groups
    are as large as the traffic makes them. Commit order is still position order: the head
    lock decides it, as between processes.
    """

    def __init__(self, store: EventStore, group_max: int, writers: int = 2) -> None:
        self.store = store
        self.group_max = group_max
        self.writers = writers
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the writer tasks (on the running loop)."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name=f"frontline-group-commit-{n}")
                for n in range(self.writers)
            ]

    async def stop(self) -> None:
        """Finish what is queued, then stop the writer tasks."""
        if not self._tasks:
            return
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def append(self, request: AppendRequest) -> list[Receipt]:
        """Append one request; its receipts, or its FrontlineError."""
        if not self._tasks:
            raise RuntimeError("GroupCommitter.start() was not called")
        pending = _Pending(request)
        self._queue.put_nowait(pending)
        # A client that goes away does not cancel its append: the group it joined commits
        # regardless, and a retry with the same ids gets the original receipts.
        return await asyncio.shield(pending.done)

    def _join_queued(self, group: list[_Pending]) -> list[AppendRequest]:
        """Called once the head lock is held: what queued while this writer waited for the
        other one to commit joins its group."""
        joined: list[_Pending] = []
        while len(group) + len(joined) < self.group_max and not self._queue.empty():
            joined.append(self._queue.get_nowait())
        group.extend(joined)
        return [p.request for p in joined]

    async def _unreachable(self, error: NotReady) -> bool:
        """Whether a group's NotReady shows the database itself unreachable, so that what
        is queued behind it fails now rather than one timeout at a time.

        Errors of one connection or one wait say nothing of the others: the pool being full
        (``TooManyConnectionsError``), a stale pooled connection (``InterfaceError``,
        ``ConnectionDoesNotExistError``), another backend's crash ending this session
        (``CrashShutdownError``: the next connect tells whether recovery is still under
        way). Only this group fails then. A timeout may be a database that stopped answering
        or only a head-lock wait behind a rebuild: a trivial read on the pool (bounded by
        ``PROBE_TIMEOUT``) tells which. Connect failures (``OSError``, the server refusing
        or shutting down) show the database unreachable.
        """
        cause = error.__cause__
        if isinstance(cause, ONE_CONNECTION):
            return False
        if isinstance(cause, TimeoutError):
            # Not wait_for: it would wait for the cancelled read to give its connection
            # back, one more timeout when nothing answers. The read ends on its own.
            probe = asyncio.ensure_future(self.store.head())
            probe.add_done_callback(_consume)
            done, _ = await asyncio.wait({probe}, timeout=PROBE_TIMEOUT)
            return not done or probe.exception() is not None
        return True

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            try:
                outcomes = await self.store.append_group(
                    [group[0].request], more=functools.partial(self._join_queued, group)
                )
            except Exception as error:  # every waiter must hear of the failure
                if isinstance(error, NotReady) and await self._unreachable(error):
                    # The database is unreachable. Each request queued meanwhile would wait
                    # for its own turn to time out, one writer attempt at a time (the group
                    # grows only under the head lock): a queue of n waits n/2 timeouts. They
                    # hear now, none of them written; a retry with the same ids is safe.
                    while not self._queue.empty():
                        group.append(self._queue.get_nowait())
                for pending in group:
                    self._queue.task_done()
                    if not pending.done.done():
                        pending.done.set_exception(error)
                continue
            for pending, outcome in zip(group, outcomes, strict=True):
                self._queue.task_done()
                if pending.done.done():
                    continue
                if isinstance(outcome, FrontlineError):
                    pending.done.set_exception(outcome)
                else:
                    pending.done.set_result(outcome)


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


@dataclass(slots=True)
class Chunk(Generic[T]):
    """Requests committed together, with what each came from (a line, a source row)."""

    items: list[T] = field(default_factory=list)
    requests: list[AppendRequest] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    events: int = 0

    def add(self, item: T, request: AppendRequest, line: int) -> None:
        self.items.append(item)
        self.requests.append(request)
        self.lines.append(line)
        self.events += len(request.events)


class ChunkWriter(Generic[T]):
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
        self._chunk: Chunk[T] | None = None
        self.failed: Chunk[T] | None = None
        """The chunk whose write raised (rolled back), if one did."""

    @property
    def busy(self) -> bool:
        """Whether a chunk is being written."""
        return self._writing is not None

    async def send(self, chunk: Chunk[T]) -> tuple[Chunk[T], list[Outcome]] | None:
        """Start writing ``chunk`` once the one in flight has ended; that one's outcomes."""
        done = await self.finish()
        self._chunk = chunk
        self._writing = asyncio.create_task(self.store.append_group(chunk.requests))
        return done

    async def finish(self) -> tuple[Chunk[T], list[Outcome]] | None:
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

    async def stop(self) -> tuple[Chunk[T], list[Outcome]] | None:
        """After a failure: wait for the chunk in flight; its outcomes if it committed."""
        try:
            return await self.finish()
        except Exception:  # the failure that stopped the import is the one told
            return None


@dataclass(slots=True)
class _Tally:
    errors: Listing
    accepted: int = 0
    duplicate: int = 0

    def reject(self, line: int, error: FrontlineError, event_id: uuid.UUID | None = None) -> None:
        self.errors.add(
            RejectedLine(line=line, reason=error.detail, field=error.field, id=event_id)
        )

    def count(self, done: tuple[Chunk[PreparedEvent], list[Outcome]] | None) -> None:
        if done is None:
            return
        chunk, outcomes = done
        for line, event, outcome in zip(chunk.lines, chunk.items, outcomes, strict=True):
            if isinstance(outcome, FrontlineError):
                self.reject(line, outcome, event.id)
            elif outcome[0].duplicate:
                self.duplicate += 1
            else:
                self.accepted += 1

    def result(self, last_position: int | None) -> ImportResult:
        return ImportResult(
            accepted=self.accepted,
            duplicate=self.duplicate,
            rejected=self.errors.count,
            errors=self.errors.items(),
            last_position=last_position,
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


def through(consumed: int, unsettled: Iterable[Chunk[Any] | None]) -> int:
    """The last line whose fate is known: the line before the first one of a chunk not
    stored (failed, or never sent), else the last line read."""
    firsts = [chunk.lines[0] for chunk in unsettled if chunk is not None and chunk.lines]
    return min(firsts) - 1 if firsts else consumed


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
    """Append every good line of an NDJSON stream, committed in chunks; report the bad ones.

    Each line is its own request: a bad line is rejected with its number and reason and
    never stops or loses the good ones. A line that withdraws an event another key appended
    is such a line, unless ``admin``; a line may withdraw an event of an earlier line of the
    same import. The next chunk is parsed while the previous one is being written. The
    answer counts every rejected line and lists the first ``max_errors``.
    An event without an ``id`` gets the one ``idempotency_key`` derives for its line, when
    one is given (``contracts.idempotency``), else a random one.

    An import either answers with the fate of every line, or raises :class:`ImportStopped`
    (the fate of every line up to ``through_line``; nothing after it stored), or, when the
    request itself is gone (a cancellation, a client that disconnected), raises that, once
    the chunk being written has ended: nothing is ever stored after the import has failed.
    """
    tally = _Tally(Listing(max_errors))
    writer: ChunkWriter[PreparedEvent] = ChunkWriter(store)
    chunk: Chunk[PreparedEvent] = Chunk()
    consumed = 0
    reading = True
    try:
        async for number, line in lines:
            reading = False
            consumed = number
            try:
                if isinstance(line, LineTooLong):
                    raise InvalidEvent(
                        f"the line is {line.size} bytes; lines of at most {line.limit} bytes "
                        "are accepted (FRONTLINE_MAX_LINE)"
                    )
                prepared = prepare_event(keyed(decode_line(line), idempotency_key, number - 1))
            except FrontlineError as error:
                tally.reject(number, error)
            else:
                request = AppendRequest(events=(prepared,), submitter=submitter, admin=admin)
                chunk.add(prepared, request, number)
            if writer.busy and len(chunk.items) % YIELD_EVERY == 0:
                # Let the chunk being written move on (its next round trip to PostgreSQL) while
                # this one is parsed: Python and PostgreSQL then work at the same time.
                await asyncio.sleep(0)
            if len(chunk.items) >= chunk_size:
                tally.count(await writer.send(chunk))
                chunk = Chunk()
            reading = True
        reading = False
        tally.count(await writer.send(chunk) if chunk.items else None)
        chunk = Chunk()
        tally.count(await writer.finish())
        last_position, _ = await store.head()
    except BaseException as error:
        tally.count(await writer.stop())
        through_line = through(consumed, (writer.failed, chunk))
        result = tally.result(None)
        log_stop(error, result, through_line, request_gone=reading)
        if reading or not isinstance(error, Exception):
            # The request itself is gone (its body could not be read, or it was cancelled):
            # nobody is left to answer, and the server tells the client's abort as such.
            raise
        raise stopped(error, result, through_line, "import") from error
    return tally.result(last_position)
