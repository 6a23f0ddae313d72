"""Following the log live: catch up from a position, then deliver commits as they land."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Final

from contracts.responses import StoredEvent
from service.store.events import EventFilter, EventStore

PAGE: Final = 500


async def follow(
    store: EventStore,
    after: int,
    where: EventFilter,
    *,
    heartbeat: float,
    poll: float,
) -> AsyncGenerator[list[StoredEvent] | None, None]:
    """Batches of the selected events after ``after``, in position order, forever.

    Yields ``None`` after ``heartbeat`` seconds without events. Positions become visible in
    commit order with no gap (one appender at a time holds the head lock), so reading
    "after the last position delivered" never skips or repeats an event. A commit of this
    process wakes the reader at once; otherwise it reads again every ``poll`` seconds, so a
    lost wake-up only delays delivery. Memory: one page at a time; the caller's sends are the
    back-pressure.
    """
    position = after
    quiet_since = time.monotonic()
    while True:
        waiter = store.committed.waiter()  # before reading: a commit after it sets it
        events = await store.page(position, PAGE, where)
        if events:
            position = events[-1].position
            quiet_since = time.monotonic()
            yield events
            continue
        silent = time.monotonic() - quiet_since
        if silent >= heartbeat:
            quiet_since = time.monotonic()
            yield None
            continue
        await store.committed.wait(waiter, min(poll, heartbeat - silent))
