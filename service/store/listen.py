"""The one database listener of a process: wakes its live streams on every commit, whichever
process of the service made it.

Each append transaction sends ``NOTIFY frontline_log`` (``append_commit.sql``), delivered
when it commits. A process that serves live streams holds one connection that ``LISTEN``\\s
for it (``FRONTLINE_DIRECT_URL`` when set: a transaction pooler cannot keep a session, and a
replica cannot listen) and tells its :class:`~service.store.signal.CommitSignal`, so a
stream of one worker sees another worker's commit at once rather than at its next poll. A
lost connection is opened again (after 1 s, doubling to 30 s); meanwhile the streams poll
(``FRONTLINE_STREAM_POLL``), so a missed notification only delays.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Final

import asyncpg
import structlog

from service.store.db import Connector

log = structlog.get_logger(__name__)

CHANNEL: Final = "frontline_log"
"""The channel every commit notifies (``append_commit.sql``)."""
RETRY_FIRST: Final = 1.0
"""Seconds before the first attempt to open a lost listener again (doubling each time)."""
RETRY_MOST: Final = 30.0
"""The longest wait between two attempts."""


class CommitListener:
    """``LISTEN frontline_log`` on one connection of its own, calling ``on_commit`` for each
    notification, reconnecting when the connection is lost."""

    def __init__(self, connector: Connector, on_commit: Callable[[], None]) -> None:
        self.connector = connector
        self.on_commit = on_commit
        self.notifications = 0
        """Notifications received so far (for tests)."""
        self.listening = asyncio.Event()
        """Set while the listener's connection is open and listening."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start listening in the background (once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="listener")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _notified(self, *_: Any) -> None:
        self.notifications += 1
        self.on_commit()

    async def _run(self) -> None:
        wait = RETRY_FIRST
        while True:
            lost = asyncio.Event()
            conn: asyncpg.Connection | None = None
            try:
                conn = await self.connector.connect()
                conn.add_termination_listener(lambda _, ended=lost: ended.set())
                await conn.add_listener(CHANNEL, self._notified)
                self.listening.set()
                log.info("live_listener_started")
                wait = RETRY_FIRST
                # Commits made while it was away: the streams read what they missed now.
                self.on_commit()
                await lost.wait()
                log.warning("live_listener_lost")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                log.warning("live_listener_failed", error_type=type(error).__name__)
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), self.connector.timeout)
            await asyncio.sleep(wait)
            wait = min(wait * 2, RETRY_MOST)
