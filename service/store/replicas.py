"""Reads from streaming replicas: which database answers a read, and at what position.

A replica made by PostgreSQL's streaming replication holds the primary's log up to the
commit it has replayed: its own ``log_head`` row, read on the replica, is the position it has
applied. :class:`ReadRouter` keeps one :class:`Node` per database (the primary, and one per
``FRONTLINE_READ_URLS`` entry) and answers, for a read that needs position N (its
``min_position``, or the N of ``known_at=position:N``), which node serves it:

* a replica in the rotation that has applied N, taking turns;
* else the most advanced replica in the rotation, once it applies N within ``wait`` seconds
  (its head is read again every :data:`POLL` seconds while someone waits);
* else the primary, which holds every committed position: a client reads its own writes.

A check every ``check`` seconds reads the primary's head and each replica's. A replica's lag
is the age of the oldest primary head it has not applied (0 when it has applied everything
the checks saw); past ``max_lag`` seconds, or when it cannot be read, it leaves the rotation,
and it comes back once it is read again within the bound.

The readers that may be routed (the front, casualties, the log's pages) are built over
:attr:`ReadRouter.pool`, which hands each statement to the node chosen for the request in
progress (a context variable, set by :meth:`ReadRouter.using`), and to the primary outside
any routed request: writes, the head, keys and live streams never reach a replica.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Final, cast

import asyncpg
import structlog

from service.store.events import UNAVAILABLE
from service.store.queries import SQL

log = structlog.get_logger(__name__)

PRIMARY: Final = "primary"
POLL: Final = 0.02
"""Seconds between reads of a replica's head while a read waits for it to apply a position."""
PROBE_TIMEOUT: Final = 2.0
"""Seconds one read of a node's head may take in a check before the node counts as down."""
HISTORY: Final = 4096
"""Primary heads remembered, with when they were seen, to tell a replica's lag in seconds."""


@dataclass(slots=True)
class Node:
    """One database that may answer reads, as this process last saw it."""

    name: str
    pool: asyncpg.Pool | None
    """None while a replica's pool could not be opened (each check tries again)."""
    applied: int = 0
    """The last position read on it (its ``log_head``): everything up to it is there."""
    seen_at: float = 0.0
    """When ``applied`` was read (monotonic seconds)."""
    in_rotation: bool = True
    lag_positions: int = 0
    lag_seconds: float = 0.0
    error: str | None = None
    """Why the last check could not read it; None when it answered."""
    _refresh: asyncio.Future[int] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Served:
    """Which node answers a read, and the position it is known to have applied."""

    node: str
    position: int
    replica: bool


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """A replica as ``/ready`` and ``/metrics`` show it."""

    name: str
    applied: int
    lag_positions: int
    lag_seconds: float
    in_rotation: bool
    error: str | None


_CURRENT: Final[contextvars.ContextVar[Node | None]] = contextvars.ContextVar(
    "frontline_read_node", default=None
)


class RoutedPool:
    """Looks like the primary's ``asyncpg.Pool`` and passes every call on to the pool of the
    node chosen for the request in progress (the primary outside a routed request)."""

    def __init__(self, primary: asyncpg.Pool) -> None:
        self._primary = primary

    def __getattr__(self, name: str) -> Any:
        node = _CURRENT.get()
        return getattr(self._primary if node is None or node.pool is None else node.pool, name)


class ReadRouter:
    """Chooses the node that answers each read, and keeps the replicas' positions and lags."""

    def __init__(
        self,
        primary: asyncpg.Pool,
        replicas: list[Callable[[], Awaitable[asyncpg.Pool]]],
        *,
        wait: float,
        max_lag: float,
        check: float,
        fresh: float | None = None,
    ) -> None:
        self.primary = Node(PRIMARY, primary)
        self.replicas = [Node(f"replica-{i}", None) for i in range(1, len(replicas) + 1)]
        self._open = dict(zip((n.name for n in self.replicas), replicas, strict=True))
        """How to open each replica's pool."""
        self.wait = wait
        self.max_lag = max_lag
        self.check_every = check
        self.fresh = check if fresh is None else fresh
        """Seconds a node's known position is taken as it is before it is read again (only
        when a read needs more, or to name the primary's position)."""
        self.pool = cast(asyncpg.Pool, RoutedPool(primary))
        """What the routed readers are built over (see :class:`RoutedPool`)."""
        self._turn = itertools.count()
        self._heads: deque[tuple[float, int]] = deque(maxlen=HISTORY)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """The first check, then a check every ``check`` seconds (only with replicas)."""
        if not self.replicas:
            return
        await self.check()
        self._task = asyncio.create_task(self._checks(), name="frontline-replica-checks")

    async def close(self) -> None:
        """Stop the checks and close the replicas' pools."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for node in self.replicas:
            if node.pool is not None:
                await node.pool.close()
                node.pool = None

    @contextmanager
    def using(self, served: Served) -> Iterator[None]:
        """Route the statements of the readers built over :attr:`pool` to ``served.node``
        within this block (this task and the tasks it starts)."""
        node = self._node(served.node)
        token = _CURRENT.set(None if node is self.primary else node)
        try:
            yield
        finally:
            _CURRENT.reset(token)

    async def route(self, need: int) -> Served:
        """The node that answers a read needing position ``need`` (0: any), and its position.

        A replica answers only when it has applied ``need``; when none has, the most advanced
        one is given ``wait`` seconds to get there; then the primary answers. A position
        past the primary's head is the primary's at once."""
        ready = [n for n in self.replicas if n.in_rotation and n.error is None]
        if ready:
            having = [n for n in ready if n.applied >= need]
            if having:
                node = having[next(self._turn) % len(having)]
                return Served(node.name, node.applied, replica=True)
            if need > self.primary.applied and need > await self._primary_position(need):
                # Not committed yet (or never): no replica can have it, waiting is in vain.
                return Served(PRIMARY, self.primary.applied, replica=False)
            best = max(ready, key=lambda n: n.applied)
            if await self._reaches(best, need):
                return Served(best.name, best.applied, replica=True)
        return await self.route_primary(need)

    async def route_primary(self, need: int) -> Served:
        """The primary, and the position it is known to have applied (read again when it
        is not fresh or does not cover ``need``)."""
        return Served(PRIMARY, await self._primary_position(need), replica=False)

    def failed(self, served: Served, reason: str) -> None:
        """A replica failed a read (the request is answered by the primary instead): out of
        the rotation until a check reads it again."""
        node = self._node(served.node)
        if node is self.primary:
            return
        if node.in_rotation:
            log.warning("replica_out_of_rotation", replica=node.name, reason=reason)
        node.in_rotation = False
        node.error = reason

    def status(self) -> list[ReplicaStatus]:
        """Every replica as the last check saw it."""
        return [
            ReplicaStatus(
                name=n.name,
                applied=n.applied,
                lag_positions=n.lag_positions,
                lag_seconds=round(n.lag_seconds, 3),
                in_rotation=n.in_rotation and n.error is None,
                error=n.error,
            )
            for n in self.replicas
        ]

    async def check(self) -> None:
        """Read the primary's head and every replica's; set each replica's lag and rotation."""
        now = time.monotonic()
        try:
            head = await self._read(self.primary, within=PROBE_TIMEOUT)
        except (*UNAVAILABLE, asyncpg.PostgresError):
            head = None  # the primary's trouble is /ready's to report, not a replica's lag
        if head is not None and (not self._heads or head > self._heads[-1][1]):
            self._heads.append((now, head))
        for node in self.replicas:
            try:
                if node.pool is None:
                    # A replica that was down at start-up: its pool opens once it answers.
                    node.pool = await asyncio.wait_for(self._open[node.name](), PROBE_TIMEOUT)
                applied = await self._read(node, within=PROBE_TIMEOUT)
            except (*UNAVAILABLE, asyncpg.PostgresError) as error:  # TimeoutError: an OSError
                if node.error is None:
                    log.warning(
                        "replica_unreachable", replica=node.name, error=type(error).__name__
                    )
                node.error = type(error).__name__
                node.in_rotation = False
                continue
            node.error = None
            top = self.primary.applied
            node.lag_positions = max(0, top - applied)
            behind = next((seen for seen, position in self._heads if position > applied), None)
            node.lag_seconds = 0.0 if behind is None else max(0.0, now - behind)
            keep = node.lag_seconds <= self.max_lag
            if keep != node.in_rotation:
                log.info(
                    "replica_back_in_rotation" if keep else "replica_out_of_rotation",
                    replica=node.name,
                    lag_seconds=round(node.lag_seconds, 3),
                    lag_positions=node.lag_positions,
                )
            node.in_rotation = keep
        while self._heads and all(
            n.applied >= self._heads[0][1] for n in self.replicas if n.error is None
        ):
            self._heads.popleft()

    async def _checks(self) -> None:
        while True:
            await asyncio.sleep(self.check_every)
            try:
                await self.check()
            except Exception:  # a check must never stop the checks
                log.exception("replica_check_failed")

    async def _reaches(self, node: Node, need: int) -> bool:
        """Whether ``node`` applies ``need`` within ``wait`` seconds (read every POLL)."""
        deadline = time.monotonic() + self.wait
        while True:
            try:
                applied = await self._refreshed(node)
            except (*UNAVAILABLE, asyncpg.PostgresError) as error:
                self.failed(Served(node.name, node.applied, replica=True), type(error).__name__)
                return False
            if applied >= need:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(POLL, left))

    async def _primary_position(self, need: int) -> int:
        """The primary's position: as last read when it is fresh and covers ``need``, else
        read now; what is known when it cannot be read (the read that follows will fail and
        say so itself)."""
        node = self.primary
        if node.applied >= need and time.monotonic() - node.seen_at < self.fresh:
            return node.applied
        with suppress(*UNAVAILABLE, asyncpg.PostgresError):
            return await self._refreshed(node)
        return node.applied

    async def _refreshed(self, node: Node) -> int:
        """The node's head read now, one read at a time however many requests ask."""
        if node._refresh is None or node._refresh.done():
            node._refresh = asyncio.ensure_future(self._read(node))
        return await asyncio.shield(node._refresh)

    async def _read(self, node: Node, within: float | None = None) -> int:
        if node.pool is None:
            raise ConnectionError(f"{node.name} has no pool: it did not answer yet")
        row = await node.pool.fetchrow(SQL.read_head, timeout=within)
        assert row is not None  # the migration inserts the head row
        position: int = row["position"]
        node.applied = max(node.applied, position)
        node.seen_at = time.monotonic()
        return node.applied

    def _node(self, name: str) -> Node:
        if name == PRIMARY:
            return self.primary
        return next(n for n in self.replicas if n.name == name)
