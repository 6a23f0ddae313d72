"""Wakes live readers when this process commits; they poll as well, so a missed wake-up
(another process's commit, or one between a reader's read and its wait) only delays."""

from __future__ import annotations

import asyncio
from contextlib import suppress


class CommitSignal:
    """``notify()`` after a commit; ``waiter()`` before reading, then ``wait`` on it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake everyone waiting (a fresh event for the next round)."""
        self._event.set()
        self._event = asyncio.Event()

    def waiter(self) -> asyncio.Event:
        """The event the next ``notify`` sets: take it *before* reading the log."""
        return self._event

    @staticmethod
    async def wait(event: asyncio.Event, seconds: float) -> None:
        """Until ``event`` is set or ``seconds`` pass (``asyncio.timeout``: no task per wait,
        which counts with a thousand live streams waiting)."""
        with suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()
