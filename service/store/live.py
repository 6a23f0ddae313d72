"""Following the log live: one reader per process, fanned out to every live stream.

One ``LiveHub`` per process reads the log's new events once (woken by every commit of every
process through the process's one database listener, :mod:`service.store.listen`, and every
``FRONTLINE_STREAM_POLL`` seconds should a notification be missed, at most every
MIN_INTERVAL), keeps the latest ``BUFFER`` of them in memory, encoded once, and wakes every
stream; a stream takes what its filters select from that memory. A stream behind the buffer
(a resume from an old position, a slow client) reads its own pages from the database until
it reaches the buffer, CATCH_UP streams at a time (and streams replaying from the same place
share the pages: the last PAGES full ones are remembered), so the database work grows with
the streams that are behind, never with the streams that are caught up, and never takes more
than a share of the process. A stream reading the database itself would cost a query per
stream per commit and one per stream per second while idle: 1,000 idle streams cut the write
rate from 204 to 59 events a second that way.

The guarantees are the log's: positions become visible in commit order, with no gap (one
appender at a time holds the head lock), so the hub's buffer is a run of consecutive
positions, and a stream that delivers "what comes after the last position it passed"
never skips or repeats an event, whether it reads the buffer or the database.

The hub also counts streams: at most ``per_key`` per key and ``anonymous`` without a key
(all anonymous clients together), in this process; past them ``subscribe`` refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Final

import asyncpg
import msgspec
import structlog

from contracts.responses import StoredEvent
from service.errors import StreamsBusy, TooManyStreams
from service.logging import LogTally
from service.store.events import UNAVAILABLE, EventFilter, EventStore, stored_event
from service.store.listen import CommitListener
from service.store.queries import SQL
from service.store.signal import CommitSignal

log = structlog.get_logger(__name__)

PAGE: Final = 500
"""Events read (and delivered) at most at once."""
BUFFER: Final = 4096
"""Latest events the hub keeps in memory (at most twice that between trims)."""
MIN_INTERVAL: Final = 0.1
"""Seconds between two reads of the hub: commits landing meanwhile share one read and one
wake-up (and one send) of every stream: at most 10 a second, whatever the commit rate, so a
live event arrives at most this much later, and 100 streams cost 1,000 sends a second at
most rather than one per stream per commit."""

CATCH_UP: Final = 2
"""Streams reading their own pages from the database at once (the rest wait their turn): a
hundred streams opened from position 0 replay the log one or two at a time, rather than all
at once, with every other request queued behind the hundred."""

PAGES: Final = 64
"""Full pages read by catching-up streams that the hub remembers (least recently used go
first): streams replaying the log from the same place (a hundred opened from position 0)
read and encode each page once between them."""

_encode: Final = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """A stored event as a live stream delivers it: its JSON, and what filters match on."""

    position: int
    place: str
    type: str
    source: str | None
    json: bytes

    @classmethod
    def of(cls, event: StoredEvent, source: str | None) -> LiveEvent:
        return cls(event.position, event.place, event.type, source, _encode(event))

    def selected_by(self, where: EventFilter) -> bool:
        """Whether ``where`` selects it, as ``read_events_page.sql`` would."""
        return (
            (where.place is None or self.place == where.place)
            and (where.type is None or self.type == where.type)
            and (where.source is None or self.source == where.source)
        )


class Subscription:
    """One live stream's place in its owner's count; ``close`` gives it back (once)."""

    def __init__(self, hub: LiveHub, owner: str | None) -> None:
        self.hub = hub
        self.owner = owner
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub._release(self.owner)


class LiveHub:
    """The one reader of new events of this process, and the count of its live streams."""

    def __init__(
        self,
        store: EventStore,
        *,
        poll: float,
        per_key: int,
        anonymous: int,
        buffer: int | None = None,
        listener: CommitListener | None = None,
    ) -> None:
        self.store = store
        self.listener = listener
        """The process's database listener, started with the reader: it wakes the reader on
        every commit of every process (None: this process's commits and the poll alone)."""
        self.poll = poll
        self.per_key = per_key
        self.anonymous = anonymous
        self.capacity = buffer if buffer is not None else BUFFER
        self.events: list[LiveEvent] = []
        """Consecutive positions ``floor + 1 .. head``."""
        self.floor = 0
        self.head: int | None = None
        """The last position read; None until the hub has started (or after it went idle)."""
        self.changed = CommitSignal()
        """Notified whenever ``head`` moves (or the hub starts)."""
        self.streams: dict[str | None, int] = {}
        """Open streams by key name (None: without a key)."""
        self.reads = 0
        """Database reads of the hub so far (for tests and the attack driver)."""
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.catching_up = asyncio.Semaphore(CATCH_UP)
        """Held by a stream while it reads a page from the database and encodes it."""
        self._pages: OrderedDict[tuple[int, EventFilter], list[LiveEvent]] = OrderedDict()
        self._refusals = LogTally(
            "excess_stream_limit_exceeded",
            flat=False,
            per_key=per_key,
            anonymous=anonymous,
        )
        """Refused streams, logged at most once a second, counted by key name (or
        ``anonymous``)."""

    # --- streams ---

    def check(self, owner: str | None) -> None:
        """Refuse now if ``subscribe(owner)`` would: TooManyStreams (429) when the key holds
        ``per_key`` streams already; StreamsBusy (503) when ``anonymous`` streams without a
        key are open. (The key check calls it before routing, so that a flood of refused
        streams costs no more than a refused key.)"""
        count = self.streams.get(owner, 0)
        if owner is None and count >= self.anonymous:
            self._refusals.add("anonymous")
            raise StreamsBusy(
                f"{self.anonymous} live streams without a key are open, the most this server "
                "serves; retry later or send a key",
                retry_after=5,
            )
        if owner is not None and count >= self.per_key:
            self._refusals.add(owner)
            raise TooManyStreams(
                f"this key holds {self.per_key} live streams, the most one key may hold; "
                "close one first",
                retry_after=5,
            )

    def subscribe(self, owner: str | None) -> Subscription:
        """A place for one more stream of ``owner`` (a key's name, None without a key);
        refused as ``check`` says."""
        self.check(owner)
        count = self.streams.get(owner, 0)
        self.streams[owner] = count + 1
        self._wanted.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="live-hub")
            if self.listener is not None:
                self.listener.start()
        return Subscription(self, owner)

    def _release(self, owner: str | None) -> None:
        left = self.streams.get(owner, 0) - 1
        if left > 0:
            self.streams[owner] = left
        else:
            self.streams.pop(owner, None)
        if not self.streams:
            self._wanted.clear()

    @property
    def open_streams(self) -> int:
        return sum(self.streams.values())

    async def close(self) -> None:
        """Stop the reader and the listener (the app's shutdown)."""
        if self.listener is not None:
            await self.listener.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- what streams read ---

    def after(self, position: int, where: EventFilter) -> tuple[list[LiveEvent], int]:
        """Up to PAGE buffered events after ``position`` that ``where`` selects, and the
        position passed: the last one taken, or ``head`` when everything was looked at.
        ``position`` must be at least ``floor``."""
        assert self.head is not None
        assert position >= self.floor
        if position >= self.head:
            return [], position
        start = position - self.floor
        if where == EventFilter():
            taken = self.events[start : start + PAGE]
            return taken, taken[-1].position
        selected: list[LiveEvent] = []
        for event in self.events[start:]:
            if event.selected_by(where):
                selected.append(event)
                if len(selected) == PAGE:
                    return selected, event.position
        return selected, self.head

    async def page(self, after: int, where: EventFilter) -> list[LiveEvent]:
        """The selected events after ``after`` (at most PAGE), read from the database for a
        stream behind the buffer, CATCH_UP streams at a time. A full page can never change
        (positions are final once visible, and nothing is ever inserted before them), so
        the last PAGES full pages are remembered for the streams that come after."""
        remembered = self._remembered(after, where)
        if remembered is not None:
            return remembered
        async with self.catching_up:
            remembered = self._remembered(after, where)  # read by another while this waited
            if remembered is not None:
                return remembered
            events = await self.store.page(after, PAGE, where)
            page = [LiveEvent.of(event, where.source) for event in events]
            if len(page) == PAGE:
                self._pages[(after, where)] = page
                while len(self._pages) > PAGES:
                    self._pages.popitem(last=False)
        return page

    def _remembered(self, after: int, where: EventFilter) -> list[LiveEvent] | None:
        page = self._pages.get((after, where))
        if page is not None:
            self._pages.move_to_end((after, where))
        return page

    # --- the reader ---

    async def _run(self) -> None:
        last_read = 0.0
        while True:
            if not self._wanted.is_set():
                # Nobody follows: forget, and start again from the log's head when someone does.
                self.head, self.events = None, []
                await self._wanted.wait()
            pause = last_read + MIN_INTERVAL - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            waiter = self.store.committed.waiter()  # before reading: a commit after it sets it
            last_read = time.monotonic()
            try:
                got = await self._read()
            except (*UNAVAILABLE, asyncpg.PostgresError) as error:
                # Streams keep their heartbeats meanwhile; the next round tries again.
                log.warning("live_reader_failed", error_type=type(error).__name__)
                await asyncio.sleep(self.poll)
                continue
            except Exception:
                # A bug must not end every stream for good: say it, and go on.
                log.exception("live_reader_failed")
                await asyncio.sleep(self.poll)
                continue
            if got < PAGE:
                await self.store.committed.wait(waiter, self.poll)

    async def _read(self) -> int:
        """Read the next page into the buffer; the number of events read."""
        self.reads += 1
        if self.head is None:
            head, _ = await self.store.head()
            self.head = self.floor = head
            self.changed.notify()
            return 0
        rows = await self.store.pool.fetch(SQL.read_live_page, self.head, PAGE)
        if not rows:
            return 0
        self.events.extend(LiveEvent.of(stored_event(row), row["source_key"]) for row in rows)
        self.head = self.events[-1].position
        if len(self.events) > 2 * self.capacity:
            dropped = len(self.events) - self.capacity
            del self.events[:dropped]
            self.floor += dropped
        self.changed.notify()
        return len(rows)


async def follow(
    hub: LiveHub,
    subscription: Subscription,
    after: int,
    where: EventFilter,
    *,
    heartbeat: float,
) -> AsyncGenerator[list[LiveEvent] | None, None]:
    """Batches of the selected events after ``after``, in position order, forever.

    Yields ``None`` after ``heartbeat`` seconds without events. Reads the hub's buffer once
    it has caught up with it, the database before (its own pages, with its filters). Gives
    the subscription back when it ends. Memory: one page at a time; the caller's sends are
    the back-pressure.
    """
    passed = after  # every selected event up to here has been delivered
    quiet_since = time.monotonic()
    try:
        while True:
            waiter = hub.changed.waiter()  # before looking: a change after it sets it
            batch: list[LiveEvent] = []
            if hub.head is not None and passed < hub.floor:
                known = hub.head
                batch = await hub.page(passed, where)
                if batch:
                    passed = batch[-1].position
                if len(batch) < PAGE:
                    # Every selected event committed before the read was in it.
                    passed = max(passed, known)
            elif hub.head is not None:
                batch, passed = hub.after(passed, where)
            if batch:
                quiet_since = time.monotonic()
                yield batch
                continue
            if hub.head is not None and passed < hub.floor:
                continue
            silent = time.monotonic() - quiet_since
            if silent >= heartbeat:
                quiet_since = time.monotonic()
                yield None
                continue
            await CommitSignal.wait(waiter, heartbeat - silent)
    finally:
        subscription.close()
