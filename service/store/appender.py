"""Group commit: many requests, few transactions.

Concurrent POSTs queue here; one writer task takes everything queued (up to
``group_max`` requests) and appends it in one transaction, so that many clients share one
commit and one fsync. Each request still succeeds or fails on its own (see
``service.domain.append``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg
import structlog

from contracts.responses import Receipt
from service.domain.append import AppendRequest
from service.domain.errors import FrontlineError
from service.errors import NotReady
from service.store.events import EventStore

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
