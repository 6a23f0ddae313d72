"""The rebuild: every row of ``segments`` again from the log, without stopping the service.

The fold runs in worker processes (one per core by default), never on the service's event
loop, and the rows go to ``segments_next``, a twin that nobody reads, while readers keep the
rows of ``segments`` and appends go on (migration 0005):

1. **Snapshot.** The head position ``P0`` is read; the log up to it is fixed (positions are
   dense and commit in order, so ``position <= P0`` is a snapshot without a long
   transaction).
2. **Fold.** The places, in id order, are cut into ranges of about the same number of
   events; each worker takes the next range (the largest first), reads its events up to
   ``P0`` with its own connection and cursor, replays each place commit by commit
   (:func:`~service.domain.bitemporal.history`) and COPYs the rows into ``segments_next``
   (which has no index yet: they are built once it is filled).
   The service's process only hands out ranges: it decodes no event and encodes no row.
3. **Catch up.** The places appended to after the last position caught up with are brought
   up to the new head commit by commit, closing and inserting rows as the append transaction
   does, by the worker that keeps their fold (the first pass keeps the folds of busy places,
   up to ``FRONTLINE_FOLD_CACHE`` events across the workers) or else the one their id hashes
   to, which folds them again from their whole log (silently up to where their rows are) and
   keeps that fold for the next rounds. Rounds repeat while each takes long or leaves much to
   fold from whole logs.
4. **Swap.** Under the head lock (appends wait), a last round catches up with the commits
   since, then ``frontline_swap_segments()`` renames the tables and the projection moves to
   the head, in one transaction. The lock is held for that round and a rename: a few
   milliseconds when the rounds before it were short.

One rebuild runs at a time in the whole database (a session advisory lock on the rebuild's
own connection): another request gets :class:`RebuildUnderWay`. Its workers hold a second
lock, shared, for as long as their sessions live, and a rebuild empties the twin only once
it has that one exclusively: if the server ends a rebuild's session (and its lock) while its
workers fold, the next rebuild is refused until they have stopped, which they do at their
next range, when the rebuild finds its lock gone (it checks before each range and round).
A rebuild that fails or is cancelled leaves ``segments`` as it was, stops its workers and
empties the twin.

The workers are this module run as ``python -m service.projections.rebuild``: length-
prefixed msgpack messages on their stdin and stdout (the connection details, URL included,
go through the pipe, never argv or the environment).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import resource
import signal
import struct
import sys
import time
import traceback
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Final, TypeVar

import asyncpg
import msgspec
import structlog

from service.domain import policy as policies
from service.domain.bitemporal import (
    Commit,
    HistoryRow,
    JoinedCommit,
    PlaceReplay,
    SegmentRow,
    history,
    stream_commits,
)
from service.domain.policy import Policy
from service.domain.projection import Fact
from service.domain.registry import PLACE_MARK, SOURCE_MARK, RegistryHistory, is_registry_stream
from service.errors import RebuildFailed, RebuildInterrupted, RebuildUnderWay
from service.projections.queries import SQL
from service.store.db import Connector
from service.store.events import UNAVAILABLE, registry_row
from service.store.queries import SQL as STORE_SQL

if TYPE_CHECKING:
    from asyncio.subprocess import Process

    from asyncpg.transaction import Transaction


log = structlog.get_logger(__name__)
T = TypeVar("T")

SEGMENT_COLUMNS: Final = (
    "place_id", "valid_from", "valid_to", "known_from", "known_to", "controller", "status",
    "status_by", "disputed", "confidence", "basis", "body",
)  # fmt: skip
COPY_BATCH: Final = 5000
"""Rows a worker sends in one COPY."""
RANGES_PER_WORKER: Final = 16
"""About how many ranges of places each worker folds (more: finer balance, more round trips)."""
MIN_RANGE_EVENTS: Final = 500
KEEP_FROM: Final = 32
"""Places with at least this many events keep their fold from the first pass (while the
worker's budget allows): a catch-up then folds only what was appended to them."""
FINAL_COLD_EVENTS: Final = 500
"""A catch-up left for the last round (under the head lock) may fold at most about this many
events of places from their whole log; more, and another round runs first."""
QUICK_ROUND: Final = 0.25
"""Seconds: a catch-up round shorter than this is followed by the last one, under the lock."""
MAX_ROUNDS: Final = 8
"""Catch-up rounds before the last one, at most (each folds what came during the previous)."""
WORKER_NICENESS: Final = 10
"""How much lower than the service's the workers' scheduling priority is."""
INDEX_TIMEOUT: Final = 3600.0
"""Seconds the indexing of the filled twin may take."""
EMPTY_LOCK_TIMEOUT_MS: Final = 2000
"""Milliseconds a failed rebuild waits for the twin's lock to empty it (else it leaves it)."""
EMPTY_TIMEOUT: Final = 10.0
"""Seconds a failed rebuild may spend emptying the twin."""
SWAP_ATTEMPTS: Final = 12
"""Tries of the last round and swap when reads hold ``segments``: each waits at most
SWAP_LOCK_TIMEOUT_MS for the tables (holding the head lock), then lets go of everything and
waits longer before the next (SWAP_BACKOFF); after the last, the rebuild is interrupted."""
SWAP_LOCK_TIMEOUT_MS: Final = 50
"""Milliseconds the swap waits for reads in flight on the tables it renames: appends (the
head lock) and new reads (queued behind the rename's lock) wait that long at most."""
SWAP_BACKOFF: Final = (0.1, 5.0)
"""Seconds before the second try of the swap, doubled at each try up to the second number."""
MAX_WORKERS: Final = 8
"""Worker processes of a rebuild, at most (each holds a database connection and memory)."""
SPARE_CONNECTIONS: Final = 10
"""Database connections a rebuild leaves free (the default FRONTLINE_POOL_MAX) beyond its
own, so that the service's pool can still grow while it runs."""


# --------------------------------------------------------------------------------------------
# Progress, as the service reports it (logs, /ready, the 409 of a second request)


@dataclass(slots=True)
class RebuildProgress:
    """Where a rebuild is: its stage, the log position it folds up to, its events done."""

    stage: str
    """``starting``, ``folding``, ``catching-up``, ``swapping``, ``done``."""
    position: int = 0
    """The snapshot position (while folding), then the position caught up with."""
    events: int = 0
    """Events of the snapshot, all places."""
    folded: int = 0
    """Events folded so far (ranges done)."""
    started: float = field(default_factory=time.monotonic)

    def describe(self) -> str:
        """One line for a person: what it does, how far it is."""
        seconds = f"{time.monotonic() - self.started:.0f} s"
        if self.stage == "folding":
            return (
                f"a rebuild is folding the log up to position {self.position} "
                f"({self.folded} of {self.events} events, {seconds})"
            )
        if self.stage == "catching-up":
            return (
                f"a rebuild is catching up with the appends made since it began (it reached "
                f"position {self.position}, {seconds})"
            )
        if self.stage == "swapping":
            return f"a rebuild is swapping its rows in (position {self.position}, {seconds})"
        return f"a rebuild is {self.stage} ({seconds})"


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What a rebuild did."""

    rows: int
    """Rows of ``segments`` after the swap."""
    position: int
    """The log position the rows follow (the head at the swap)."""
    policy: str
    policy_version: int
    events: int
    """Events folded from the snapshot (catch-up rounds not counted)."""
    rounds: int
    """Catch-up rounds, the last one (under the head lock) included."""
    seconds: float
    workers: int
    worker_peak_kib: int
    """The largest peak resident memory of a worker process, in KiB."""
    locked_seconds: float = 0.0
    """How long it held the head lock (appends waited meanwhile): the last catch-up round and
    the swap, the swap's wait for reads in flight included."""
    lock_wait_seconds: float = 0.0
    """How long it waited for the head lock itself (behind an append's commit)."""
    caught_up_cold: int = 0
    """Places caught up with by folding their whole log (their first catch-up)."""
    caught_up_warm: int = 0
    """Places caught up with by folding only their new commits, from a fold a worker kept."""


Observer = Callable[[RebuildProgress], Awaitable[None]]


# --------------------------------------------------------------------------------------------
# Messages between the service and its workers


class Start(msgspec.Struct, tag="start", frozen=True):
    """The first message to a worker: how to connect, which policy, how much to keep."""

    connector: Connector
    policy: str
    policy_version: int
    keep_events: int
    """Events whose folds a worker keeps between catch-up rounds (least recently used go)."""


class FoldRange(msgspec.Struct, tag="range", frozen=True):
    """Fold the places whose id is in ``[low, high)`` (None: unbounded) up to ``upto``."""

    low: str | None
    high: str | None
    upto: int


class CatchUp(msgspec.Struct, tag="catch-up", frozen=True):
    """Bring some places' rows in ``segments_next`` up to ``upto``."""

    places: list[str]
    upto: int
    snapshot: int
    """The position the first pass folded every place up to."""


class Done(msgspec.Struct, tag="done", frozen=True):
    """A task done: how the row count of ``segments_next`` changed, events read, memory,
    and (catching up) the places folded from their whole log and from a kept fold."""

    rows: int
    events: int
    peak_kib: int
    cold: int = 0
    warm: int = 0
    kept: list[str] = msgspec.field(default_factory=list)
    """The places whose fold the worker now keeps (a range's busy places; the places of a
    catch-up), for the catch-up rounds."""
    dropped: list[str] = msgspec.field(default_factory=list)
    """The places whose fold the worker no longer keeps (its budget was full)."""


class Failed(msgspec.Struct, tag="failed", frozen=True):
    """A task failed; nothing of it was committed."""

    error: str
    passing: bool = False
    """Whether the cause passes (no connection to be had, the database out of resources):
    the rebuild is then interrupted (503), not failed (500)."""


PASSING: Final[tuple[type[Exception], ...]] = (asyncpg.InsufficientResourcesError, *UNAVAILABLE)
"""Errors of a worker that a later rebuild may not meet: too many connections, out of
memory or disk (SQLSTATE class 53), the database unreachable or restarting."""


def _failed(error: Exception) -> Failed:
    return Failed(error=f"{type(error).__name__}: {error}", passing=isinstance(error, PASSING))


Task = FoldRange | CatchUp
_to_worker: Final = msgspec.msgpack.Encoder()
_from_service: Final[msgspec.msgpack.Decoder[Start | FoldRange | CatchUp]] = (
    msgspec.msgpack.Decoder(Start | FoldRange | CatchUp)
)
_from_worker: Final[msgspec.msgpack.Decoder[Done | Failed]] = msgspec.msgpack.Decoder(Done | Failed)
_LENGTH: Final = struct.Struct(">I")


def policy_named(name: str, version: int) -> Policy:
    """The policy of ``service.domain.policy`` with this name and version (a worker gets the
    policy by name: its weights are not sent)."""
    for value in vars(policies).values():
        if isinstance(value, Policy) and (value.name, value.version) == (name, version):
            return value
    raise LookupError(f"no policy {name!r} version {version} in service.domain.policy")


# --------------------------------------------------------------------------------------------
# The worker process


def _record(row: SegmentRow, known_from: int, known_to: int | None) -> tuple[object, ...]:
    return (
        row.place_id, row.valid_from, row.valid_to, known_from, known_to, row.controller,
        row.status, row.status_by, row.disputed, row.confidence, row.basis, row.body.decode(),
    )  # fmt: skip


def replay(
    place_id: str,
    commits: Sequence[Commit],
    policy: Policy,
    sides: RegistryHistory | None = None,
    upto: int | None = None,
) -> tuple[list[HistoryRow], PlaceReplay]:
    """:func:`~service.domain.bitemporal.history`, keeping the replay (its fold and current
    rows) for the commits that follow (the same steps, so the same rows: a test holds them
    equal)."""
    place = PlaceReplay(place_id, policy, sides)
    done: list[HistoryRow] = []
    for commit, closed, _ in place.advance(commits, upto):
        done.extend(HistoryRow(row, known_from, commit) for row, known_from in closed)
    done.extend(place.open_rows())
    return done, place


def _peak_kib() -> int:
    """This process's peak resident memory, in KiB (Linux counts ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@dataclass(slots=True)
class _Kept:
    """A place's fold and current rows that a worker keeps (from the first pass, or from a
    catch-up), as of position ``upto``: the rows it wrote to the twin for the place. A task
    that fails fails the rebuild, so these never outlive a rolled-back write."""

    replay: PlaceReplay
    upto: int


class _Worker:
    """One worker process's side: a connection, the policy, the folds it keeps."""

    def __init__(self, conn: asyncpg.Connection, policy: Policy, keep_events: int) -> None:
        self.conn = conn
        self.policy = policy
        self.keep_events = keep_events
        self.kept: OrderedDict[str, _Kept] = OrderedDict()
        self.kept_events = 0
        self.caught: dict[str, int] = {}
        """The position each place this worker caught up with has its rows in the twin up
        to (the others: the first pass's snapshot)."""
        self.sides = RegistryHistory()
        """The side registry's history up to the current task's position."""
        self.clusters: dict[str, frozenset[str]] = {}
        """The places a merge up to the task's position ever joined, with the streams
        their replay reads (:meth:`RegistryHistory.clusters`)."""

    async def _read_sides(self, upto: int) -> None:
        """The side registry's history up to ``upto`` (a registry is small: read whole)."""
        rows = await self.conn.fetch(STORE_SQL.read_registry, upto)
        self.sides = RegistryHistory(registry_row(r) for r in rows)
        self.clusters = self.sides.clusters(upto)

    async def _joined_log(self, place: str, upto: int) -> list[JoinedCommit]:
        """The commits of every stream a merge ever joined ``place`` with, up to ``upto``."""
        rows = await self.conn.fetch(STORE_SQL.read_streams_log, sorted(self.clusters[place]), upto)
        decode = Fact.from_payload
        return stream_commits((r[0], r[2], decode(r[3])) for r in rows)

    async def run(self, task: Task) -> Done:
        await self._read_sides(task.upto)
        if isinstance(task, FoldRange):
            kept: list[str] = []
            rows, events = await self.fold_range(task, kept)
            return Done(rows=rows, events=events, peak_kib=_peak_kib(), kept=kept)
        places = set(task.places)
        warm = sum(place in self.kept for place in places)
        rows, events = await self.catch_up(task)
        return Done(
            rows=rows,
            events=events,
            peak_kib=_peak_kib(),
            cold=len(places) - warm,
            warm=warm,
            kept=[place for place in places if place in self.kept],
            dropped=self._evict(),
        )

    async def fold_range(self, task: FoldRange, kept: list[str]) -> tuple[int, int]:
        """Every row of the range's places up to ``task.upto``, COPYed into the twin; the
        folds of its busy places are kept (while they fit), their names added to ``kept``:
        appends go to busy places most, and those are the costly ones to fold again."""
        batch: list[tuple[object, ...]] = []
        written = events = 0
        place: str | None = None
        commits: list[tuple[int, list[Fact]]] = []
        decode = Fact.from_payload
        query = SQL.read_log_range_for_rebuild
        clusters = self.clusters
        joined: set[str] = set()
        async with self.conn.transaction():
            await self.conn.execute(SQL.plan_ranges_in_index_order)
            async for record in self.conn.cursor(
                query, task.low, task.high, task.upto, prefetch=2000
            ):
                place_id, commit, payload = record[0], record[1], record[2]
                if clusters and place_id in clusters:
                    joined.add(place_id)  # replayed with the streams merged with it, below
                    continue
                if place_id != place:
                    if place is not None:
                        written += await self._history(place, commits, batch, task, kept)
                    place, commits = place_id, []
                events += 1
                if commits and commits[-1][0] == commit:
                    commits[-1][1].append(decode(payload))
                else:
                    commits.append((commit, [decode(payload)]))
            if place is not None:
                written += await self._history(place, commits, batch, task, kept)
            for place_id in sorted(joined):
                log = await self._joined_log(place_id, task.upto)
                events += sum(1 for commit in log for stream in commit[2] if stream == place_id)
                rows = history(place_id, log, self.policy, self.sides, task.upto)
                batch.extend(_record(h.row, h.known_from, h.known_to) for h in rows)
                written += len(rows)
            await self._copy(batch)
        return written, events

    async def _history(
        self,
        place: str,
        commits: list[tuple[int, list[Fact]]],
        batch: list[tuple[object, ...]],
        task: FoldRange,
        kept: list[str],
    ) -> int:
        events = sum(len(added) for _, added in commits)
        if events >= KEEP_FROM and self.kept_events + events <= self.keep_events:
            rows, replayed = replay(place, commits, self.policy, self.sides, task.upto)
            self.kept[place] = _Kept(replayed, task.upto)
            self.kept_events += len(replayed)
            kept.append(place)
        else:
            rows = history(place, commits, self.policy, self.sides, task.upto)
        batch.extend(_record(h.row, h.known_from, h.known_to) for h in rows)
        if len(batch) >= COPY_BATCH:
            await self._copy(batch)
        return len(rows)

    async def _copy(self, batch: list[tuple[object, ...]]) -> None:
        if batch:
            await self.conn.copy_records_to_table(
                "segments_next", records=batch, columns=SEGMENT_COLUMNS
            )
            batch.clear()

    async def catch_up(self, task: CatchUp) -> tuple[int, int]:
        """Bring the places' rows up to ``task.upto``, commit by commit as the append
        transaction would (rows closed at each commit, rows inserted at it). A place whose
        fold is kept folds only its new commits; another is folded again from its whole
        log, silently up to the position its rows in the twin are at, then the same way."""
        places = sorted(set(task.places))
        logs: dict[str, list[Commit]] = {p: [] for p in places}
        joined = [p for p in places if p in self.clusters]
        for place in joined:
            # Replayed from its whole joined log: a fold kept from before a merge lacks the
            # events of the streams merged with it.
            gone = self.kept.pop(place, None)
            if gone is not None:
                self.kept_events -= len(gone.replay)
        after = [self.kept[p].upto if p in self.kept else 0 for p in places]
        decode = Fact.from_payload
        events = 0
        inserts: list[list[Any]] = []
        closes: tuple[list[str], list[datetime], list[int]] = ([], [], [])
        async with self.conn.transaction():
            for record in await self.conn.fetch(
                SQL.read_places_log_for_rebuild, places, after, task.upto
            ):
                place_id, commit, payload = record[0], record[1], record[2]
                events += 1
                if place_id in self.clusters:
                    continue
                commits = logs[place_id]
                if commits and commits[-1][0] == commit:
                    commits[-1][1].append(decode(payload))  # type: ignore[attr-defined]
                else:
                    commits.append((commit, [decode(payload)]))
            for place in joined:
                logs[place] = [*await self._joined_log(place, task.upto)]
            for place in places:
                entry = self.kept.pop(place, None)
                new = logs[place]
                if entry is None:
                    written = self.caught.get(place, task.snapshot)
                    old = [c for c in new if c[0] <= written]
                    new = [c for c in new if c[0] > written]
                    _, replayed = replay(place, old, self.policy, self.sides, written)
                    entry = _Kept(replayed, written)
                else:
                    self.kept_events -= len(entry.replay)
                self._advance(place, entry, new, task.upto, inserts, closes)
                entry.upto = self.caught[place] = task.upto
                self.kept[place] = entry
                self.kept_events += len(entry.replay)
            if closes[0]:
                await self.conn.execute(SQL.close_segments_next, *closes)
            await self.conn.copy_records_to_table(
                "segments_next", records=[tuple(r) for r in inserts], columns=SEGMENT_COLUMNS
            )
        return len(inserts), events

    def _advance(
        self,
        place: str,
        entry: _Kept,
        commits: list[Commit],
        upto: int,
        inserts: list[list[Any]],
        closes: tuple[list[str], list[datetime], list[int]],
    ) -> None:
        """Fold a kept place's new commits one by one, as the append transaction would:
        rows closed at each commit, rows inserted at it (and at each commit up to ``upto``
        that remapped a side name the place uses). A row both inserted and closed within
        this task is inserted closed."""
        pending: dict[tuple[datetime, int], list[Any]] = {}
        entry.replay.sides = self.sides
        for commit, closed, inserted in entry.replay.advance(commits, upto):
            for row, known_from in closed:
                mine = pending.pop((row.valid_from, known_from), None)
                if mine is not None:
                    mine[4] = commit
                else:
                    closes[0].append(place)
                    closes[1].append(row.valid_from)
                    closes[2].append(commit)
            for row in inserted:
                record = [*_record(row, commit, None)]
                pending[row.valid_from, commit] = record
                inserts.append(record)

    def _evict(self) -> list[str]:
        """Drop the least recently caught-up folds while the kept ones hold too many events;
        the places dropped."""
        dropped: list[str] = []
        while self.kept_events > self.keep_events and self.kept:
            place, evicted = self.kept.popitem(last=False)
            self.kept_events -= len(evicted.replay)
            dropped.append(place)
        return dropped


def _read_message(stream: IO[bytes]) -> Start | FoldRange | CatchUp | None:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None  # the service closed the pipe (it stopped, or it is done with us)
    (length,) = _LENGTH.unpack(header)
    return _from_service.decode(stream.read(length))


def _write_message(stream: IO[bytes], message: Done | Failed) -> None:
    body = _to_worker.encode(message)
    stream.write(_LENGTH.pack(len(body)) + body)
    stream.flush()


def worker_main() -> int:
    """A worker process: tasks from stdin, answers to stdout, until stdin closes."""
    # The protocol owns the real stdout; anything printed goes to stderr (the service's log).
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # The fold is background work: the service's own process (reads, appends) goes first
    # when the cores are busy.
    os.nice(WORKER_NICENESS)
    commands = sys.stdin.buffer
    start = _read_message(commands)
    if not isinstance(start, Start):
        return 2
    with asyncio.Runner() as runner:
        worker: _Worker | None = None
        broken: Failed | None = None
        try:
            policy = policy_named(start.policy, start.policy_version)
            conn = runner.run(start.connector.connect())
            worker = _Worker(conn, policy, start.keep_events)
            # Held for as long as this session lives: no rebuild empties the twin meanwhile.
            runner.run(conn.execute(SQL.hold_rebuild_workers_lock))
        except Exception as error:  # every task then answers it: the rebuild fails with it
            broken = _failed(error)
        # The answer to Start: the service goes on once every worker holds the lock.
        _write_message(channel, broken or Done(rows=0, events=0, peak_kib=_peak_kib()))
        try:
            while (task := _read_message(commands)) is not None:
                if isinstance(task, Start):
                    return 2
                answer: Done | Failed
                if worker is None:
                    assert broken is not None
                    answer = broken
                else:
                    try:
                        answer = runner.run(worker.run(task))
                    except Exception as error:  # reported to the service: the rebuild fails
                        traceback.print_exc()
                        answer = _failed(error)
                _write_message(channel, answer)
        finally:
            if worker is not None:
                runner.run(worker.conn.close())
    return 0


# --------------------------------------------------------------------------------------------
# The service's side


class _Process:
    """One worker process, driven by the service one task at a time."""

    def __init__(self, process: Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, start: Start) -> _Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.projections.rebuild",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        worker = cls(process)
        try:
            await worker._send(start)
            await worker._answer()  # connected, and holding the workers' lock
        except BaseException:  # a worker that cannot be told how to start must not linger
            await worker.kill()
            raise
        return worker

    async def _send(self, message: msgspec.Struct) -> None:
        assert self.process.stdin is not None
        body = _to_worker.encode(message)
        self.process.stdin.write(_LENGTH.pack(len(body)) + body)
        await self.process.stdin.drain()

    async def run(self, task: Task) -> Done:
        await self._send(task)
        return await self._answer()

    async def _answer(self) -> Done:
        assert self.process.stdout is not None
        try:
            header = await self.process.stdout.readexactly(_LENGTH.size)
            (length,) = _LENGTH.unpack(header)
            answer = _from_worker.decode(await self.process.stdout.readexactly(length))
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 5)
            code = self.process.returncode
            if code is not None and code < 0:
                # Killed: by the kernel when memory ran out (SIGKILL), or by an operator.
                raise RebuildInterrupted(
                    f"a rebuild worker process was killed ({signal.Signals(-code).name}; the "
                    "kernel kills a process so when memory runs out: fewer workers, "
                    "FRONTLINE_REBUILD_WORKERS, or a smaller FRONTLINE_FOLD_CACHE need less)"
                ) from error
            raise RebuildFailed(f"a rebuild worker process ended (exit code {code})") from error
        if isinstance(answer, Failed):
            if answer.passing:
                raise RebuildInterrupted(f"a rebuild worker could not go on: {answer.error}")
            raise RebuildFailed(f"a rebuild worker failed: {answer.error}")
        return answer

    async def stop(self) -> None:
        """Close its stdin (it ends on its own), or end it when it does not (or when the
        rebuild is cancelled meanwhile)."""
        if self.process.returncode is None and self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except BaseException:
            await self.kill()

    async def kill(self) -> None:
        """End it now, and wait until it has ended."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await asyncio.shield(self.process.wait())


class _Workers:
    """The worker processes of one rebuild."""

    def __init__(self, processes: list[_Process], snapshot: int) -> None:
        self.processes = processes
        self.snapshot = snapshot
        self.peak_kib = 0
        self.cold = 0
        self.warm = 0
        self.owner: dict[str, int] = {}
        """The worker that folded each place kept or caught up with: it alone catches up
        with it (it may keep its fold; two workers must never both hold one)."""
        self.held: set[str] = set()
        """The places whose fold a worker keeps now (as its answers said)."""

    @classmethod
    async def start(cls, count: int, start: Start, snapshot: int) -> _Workers:
        started: list[_Process] = []
        try:
            for _ in range(count):
                started.append(await _Process.start(start))
        except BaseException:
            for process in started:
                await process.stop()
            raise
        return cls(started, snapshot)

    async def _run(self, process: _Process, task: Task) -> Done:
        done = await process.run(task)
        self.peak_kib = max(self.peak_kib, done.peak_kib)
        self.cold += done.cold
        self.warm += done.warm
        self.held.update(done.kept)
        self.held.difference_update(done.dropped)
        return done

    async def fold(
        self,
        ranges: list[FoldRange],
        progress: RebuildProgress,
        check: Callable[[], Awaitable[None]],
    ) -> int:
        """Every range, each to the next free worker (``check`` before each); the rows
        written."""
        queue = list(reversed(ranges))
        written = 0

        async def drive(index: int, process: _Process) -> None:
            nonlocal written
            while queue:
                await check()
                if not queue:
                    return
                done = await self._run(process, queue.pop())
                written += done.rows
                progress.folded += done.events
                self.owner.update(dict.fromkeys(done.kept, index))

        await _all(drive(i, p) for i, p in enumerate(self.processes))
        return written

    def kept(self, place: str) -> bool:
        """Whether a worker keeps the place's fold (a catch-up of it folds only new commits)."""
        return place in self.held

    async def catch_up(self, places: Sequence[str], upto: int) -> int:
        """The places' rows brought up to ``upto``, each by the worker that holds it (or
        the one its id hashes to, which holds it from then on); the change in the row
        count."""
        shares: list[list[str]] = [[] for _ in self.processes]
        for place in places:
            index = self.owner.setdefault(place, zlib.crc32(place.encode()) % len(shares))
            shares[index].append(place)
        dones = await _all(
            self._run(process, CatchUp(places=share, upto=upto, snapshot=self.snapshot))
            for process, share in zip(self.processes, shares, strict=True)
            if share
        )
        return sum(done.rows for done in dones)

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.processes), return_exceptions=True)


async def _all(aws: Iterable[Awaitable[T]]) -> list[T]:
    """Run the awaitables together; on the first failure cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def plan_ranges(places: Sequence[tuple[str, int]], workers: int, upto: int) -> list[FoldRange]:
    """Cut places (id order, with their event counts) into ranges of about equal work,
    largest first. A busy place is a range of its own; the first range starts unbounded and
    the last ends unbounded, so every place of the log is in exactly one."""
    total = sum(count for _, count in places)
    target = max(math.ceil(total / (workers * RANGES_PER_WORKER)), MIN_RANGE_EVENTS)
    cuts: list[tuple[int, str | None]] = []  # (events, first place id) of each range
    size = 0
    for place, count in places:
        if not cuts or (size > 0 and size + count > target):
            if cuts:
                cuts[-1] = (size, cuts[-1][1])
            cuts.append((0, place))
            size = 0
        size += count
    if not cuts:
        return [FoldRange(low=None, high=None, upto=upto)]
    cuts[-1] = (size, cuts[-1][1])
    ranges = [
        (events, FoldRange(low=None if i == 0 else low, high=nxt, upto=upto))
        for i, ((events, low), nxt) in enumerate(
            zip(cuts, [c[1] for c in cuts[1:]] + [None], strict=True)
        )
    ]
    ranges.sort(key=lambda item: -item[0])
    return [r for _, r in ranges]


@dataclass(slots=True)
class Rebuild:
    """One rebuild, driven from the service's event loop (which it never blocks)."""

    connector: Connector
    policy: Policy
    workers: int
    keep_events: int
    swap: Callable[[asyncpg.Connection, Transaction, int], Awaitable[None]]
    """Swaps the tables and moves the projection to the position in the open transaction
    (which holds the head lock), and commits it: the projector's part, which forgets its
    fold cache at the same time."""
    observe: Observer | None = None
    spare_connections: int = SPARE_CONNECTIONS
    """Database connections left free for the service beyond the rebuild's own (fewer
    workers when the server has fewer free)."""
    progress: RebuildProgress = field(default_factory=lambda: RebuildProgress("starting"))
    report: RebuildReport | None = field(default=None, init=False)
    """Set once the rows are swapped in (before the tidying up that follows)."""

    async def _stage(self, stage: str, position: int) -> None:
        self.progress.stage = stage
        self.progress.position = position
        log.info("projections_rebuild_stage", stage=stage, position=position)
        if self.observe is not None:
            await self.observe(self.progress)

    async def run(self) -> RebuildReport:
        """Fold, catch up, swap; the report."""
        try:
            policy_named(self.policy.name, self.policy.version)
        except LookupError as error:
            raise RebuildFailed(f"the workers cannot fold with this policy: {error}") from None
        conn = await self.connector.connect()
        workers: _Workers | None = None
        start = Start(
            connector=self.connector,
            policy=self.policy.name,
            policy_version=self.policy.version,
            keep_events=max(self.keep_events // self.workers, 1),
        )

        holder = _LockHolder(conn)

        async def pool() -> _Workers:
            nonlocal workers
            if workers is None:
                workers = await _Workers.start(count, start, snapshot)
                # The workers hold their lock now: if this session still holds the
                # rebuild's, no other rebuild started since, and none will empty the twin.
                await holder.check()
            return workers

        holding = False
        # Whether this session holds the rebuild's lock (then the twin is this rebuild's).
        try:
            if not await conn.fetchval(SQL.try_rebuild_lock):
                raise RebuildUnderWay("another process is rebuilding the projections")
            holding = True
            # Workers of a rebuild whose session ended (its lock with it) may still write to
            # the twin: wait for them to end rather than empty it under them.
            if not await conn.fetchval(SQL.try_rebuild_workers_lock):
                holding = False
                raise RebuildUnderWay(
                    "the workers of an earlier rebuild, whose session ended, still write to "
                    "the projections' twin table; they stop within a range"
                )
            try:
                await conn.execute(SQL.clear_segments_next)
            finally:
                await conn.execute(SQL.release_rebuild_workers_lock)
            free = await conn.fetchval(SQL.read_free_connections)
            count = worker_count(self.workers, free, self.spare_connections)
            if count < self.workers:
                log.info("projections_rebuild_workers_capped", workers=count, free_connections=free)
            start = msgspec.structs.replace(start, keep_events=max(self.keep_events // count, 1))
            snapshot = await _head(conn)
            places = [
                (r["id"], r["version"]) for r in await conn.fetch(SQL.read_places_for_rebuild)
            ]
            self.progress.events = snapshot
            await self._stage("folding", snapshot)
            rows = 0
            if snapshot > 0:
                ranges = plan_ranges(places, count, snapshot)
                running = await pool()
                rows += await running.fold(ranges, self.progress, holder.check)
            # Building the indexes of millions of rows may outlast FRONTLINE_DB_TIMEOUT,
            # which bounds every other statement of the rebuild.
            await conn.execute(SQL.index_segments_next, timeout=INDEX_TIMEOUT)
            caught = snapshot
            rounds = 0
            await self._stage("catching-up", caught)
            quick = False
            for _ in range(MAX_ROUNDS):
                await holder.check()
                head = await _head(conn)
                touched = await _touched(conn, caught, head)
                if not touched:
                    break
                running = await pool()
                # After a quick round, what came meanwhile is left to the last round (under
                # the head lock), unless it would fold much from whole logs there.
                if quick:
                    cold = [place for place in touched if not running.kept(place)]
                    if await conn.fetchval(SQL.count_places_events, cold) <= FINAL_COLD_EVENTS:
                        break
                began = time.monotonic()
                rows += await running.catch_up(touched, head)
                caught, rounds = head, rounds + 1
                self.progress.position = caught
                took = time.monotonic() - began
                quick = took < QUICK_ROUND
                log.info(
                    "projections_rebuild_round",
                    places=len(touched),
                    position=caught,
                    seconds=round(took, 3),
                )
            await self._stage("swapping", caught)
            locked_seconds = lock_waited = 0.0
            for attempt in range(1, SWAP_ATTEMPTS + 1):
                transaction = conn.transaction()
                await transaction.start()
                try:
                    # Appends wait from here to the commit: one short round and the rename.
                    asked = time.monotonic()
                    locked = await conn.fetchrow(STORE_SQL.lock_head)
                    assert locked is not None  # the migration inserts the head row
                    lock_began = time.monotonic()
                    lock_waited += lock_began - asked
                    final = int(locked["position"])
                    touched = await _touched(conn, caught, final)
                    if touched:
                        rows += await (await pool()).catch_up(touched, final)
                        rounds += 1
                    caught = final
                    caught_up = time.monotonic()
                    # The rename needs both tables to itself: it waits for reads in flight,
                    # and new reads queue behind it, appends behind the head lock: briefly.
                    await conn.execute(SQL.set_local_lock_timeout, str(SWAP_LOCK_TIMEOUT_MS))
                    await conn.execute(SQL.lock_segments_for_swap)
                    await self.swap(conn, transaction, final)
                    locked_seconds = time.monotonic() - lock_began
                    log.info(
                        "projections_rebuild_swapped",
                        position=final,
                        places=len(touched),
                        catch_up_seconds=round(caught_up - lock_began, 4),
                        swap_seconds=round(time.monotonic() - caught_up, 4),
                    )
                except asyncpg.LockNotAvailableError:
                    await transaction.rollback()
                    if attempt == SWAP_ATTEMPTS:
                        raise RebuildInterrupted(
                            "the rebuild could not swap its rows in: reads held the segments "
                            f"table each of {SWAP_ATTEMPTS} times it tried (a long read, such "
                            "as GET /v1/verify?projections=full, holds it to its end)"
                        ) from None
                    pause = min(SWAP_BACKOFF[0] * 2 ** (attempt - 1), SWAP_BACKOFF[1])
                    log.warning("projections_rebuild_swap_waited", attempt=attempt, pause=pause)
                    await asyncio.sleep(pause)
                    continue
                except BaseException:
                    with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError):
                        await transaction.rollback()
                    raise
                break
            # Swapped in: what follows only tidies up, and a cancellation there (the service
            # stopping) does not undo it; the report says what was done.
            self.report = RebuildReport(
                rows=rows,
                position=caught,
                policy=self.policy.name,
                policy_version=self.policy.version,
                events=snapshot,
                rounds=rounds,
                seconds=round(time.monotonic() - self.progress.started, 3),
                workers=0 if workers is None else len(workers.processes),
                worker_peak_kib=0 if workers is None else workers.peak_kib,
                locked_seconds=round(locked_seconds, 4),
                lock_wait_seconds=round(lock_waited, 4),
                caught_up_cold=0 if workers is None else workers.cold,
                caught_up_warm=0 if workers is None else workers.warm,
            )
            # The old rows now sit in segments_next: let them go.
            await conn.execute(SQL.clear_segments_next)
            await self._stage("done", caught)
            return self.report
        except BaseException:
            # A failed or cancelled rebuild: its workers first (they may still be writing),
            # then the rows they left in the twin, while this session still holds the lock
            # (another rebuild may not empty the twin meanwhile, nor be emptied by us).
            if workers is not None:
                await workers.stop()
                workers = None
            if holding:
                await _empty_twin(conn)
            raise
        finally:
            try:
                if workers is not None:
                    await workers.stop()
            finally:
                # Closing the connection ends the advisory lock (and any transaction open).
                await _close(conn)


class _LockHolder:
    """Checks that the rebuild's session still holds its lock (a server may end an idle
    session: ``idle_session_timeout``, ``pg_terminate_backend``; the lock goes with it, and
    another rebuild could start). One check at a time on the session."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.turn = asyncio.Lock()

    async def check(self) -> None:
        """RebuildInterrupted when the session ended or no longer holds the lock."""
        async with self.turn:
            try:
                held = await self.conn.fetchval(SQL.read_rebuild_lock_held)
            except (asyncpg.PostgresError, *UNAVAILABLE) as error:
                raise RebuildInterrupted(
                    "the rebuild lost its database session, and with it the lock that makes "
                    f"it the only one ({type(error).__name__}); its rows are let go"
                ) from error
            if not held:
                raise RebuildInterrupted(
                    "the rebuild no longer holds its lock; its rows are let go"
                )


async def _empty_twin(conn: asyncpg.Connection) -> None:
    """Empty the twin after a failed or cancelled rebuild, if this can be done quickly (the
    next rebuild empties it anyway: this only gives its disk back early). Never raises: the
    rebuild's own error is the one to report."""
    if conn.is_closed():
        return
    try:
        async with conn.transaction():
            # A session of a killed worker may still hold the table for a moment.
            await conn.execute(SQL.set_local_lock_timeout, str(EMPTY_LOCK_TIMEOUT_MS))
            await conn.execute(SQL.clear_segments_next, timeout=EMPTY_TIMEOUT)
    except (asyncpg.PostgresError, *UNAVAILABLE) as error:
        log.warning("projections_rebuild_twin_left", error=f"{type(error).__name__}: {error}")
    except asyncio.CancelledError:
        # Cancelled again while emptying it (a second shutdown signal): drop the session.
        conn.terminate()
        raise


async def _close(conn: asyncpg.Connection) -> None:
    """Close the connection; drop it if that fails or is cancelled."""
    try:
        await conn.close(timeout=5)
    except Exception:
        conn.terminate()
    except BaseException:  # cancelled: drop it, and go on being cancelled
        conn.terminate()
        raise


async def _head(conn: asyncpg.Connection) -> int:
    row = await conn.fetchrow(STORE_SQL.read_head)
    assert row is not None  # the migration inserts the head row, a trigger keeps it
    return int(row["position"])


async def places_remapped(conn: Any, remapped: frozenset[str], position: int) -> dict[str, int]:
    """The places (with their versions) whose events up to ``position`` use a remapped
    name: a side name as side, opponent or alignment, or a source key (marked ``source:``)."""
    sides = sorted(
        n for n in remapped if not n.startswith(SOURCE_MARK) and not n.startswith(PLACE_MARK)
    )
    keys = sorted(n.removeprefix(SOURCE_MARK) for n in remapped if n.startswith(SOURCE_MARK))
    found: dict[str, int] = {}
    if sides:
        rows = await conn.fetch(SQL.read_places_naming, sides, position)
        found.update((r["id"], r["version"]) for r in rows)
    if keys:
        rows = await conn.fetch(SQL.read_places_citing, keys, position)
        found.update((r["id"], r["version"]) for r in rows)
    return found


async def _touched(conn: asyncpg.Connection, after: int, upto: int) -> list[str]:
    """The places commits in ``(after, upto]`` appended to, and those whose events use a
    name the registry edits among those commits remap (they fold again at the edit)."""
    if upto <= after:
        return []
    streams = [r["place_id"] for r in await conn.fetch(SQL.read_places_touched, after, upto)]
    places = {s for s in streams if not is_registry_stream(s)}
    rows = await conn.fetch(STORE_SQL.read_registry, upto)
    if not rows:
        return sorted(places)
    registry = RegistryHistory(registry_row(r) for r in rows)
    remapped = frozenset().union(*(c.remapped for c in registry.between(after, upto)))
    if remapped:
        places.update(await places_remapped(conn, remapped, upto))
        places.update(n.removeprefix(PLACE_MARK) for n in remapped if n.startswith(PLACE_MARK))
    # A place a merge joined with others changes with theirs.
    clusters = registry.clusters(upto)
    for place in list(places):
        places.update(clusters.get(place, ()))
    return sorted(places)


def workers_for(configured: int) -> int:
    """Worker processes of a rebuild: the configured number, or one per core (0), at most
    MAX_WORKERS."""
    wanted = configured if configured > 0 else max(len(os.sched_getaffinity(0)), 1)
    return min(wanted, MAX_WORKERS)


def worker_count(wanted: int, free_connections: int, spare: int) -> int:
    """Worker processes for this rebuild: ``wanted``, at most MAX_WORKERS, and as many as
    leave ``spare`` of the server's free connections to the service (at least one: a rebuild
    that cannot connect its worker is interrupted, 503)."""
    return max(1, min(wanted, MAX_WORKERS, free_connections - spare))


if __name__ == "__main__":
    raise SystemExit(worker_main())
