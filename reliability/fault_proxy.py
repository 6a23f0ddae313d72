"""Faults between the service and PostgreSQL: a TCP proxy on loopback, and the check it drives.

``FaultProxy`` listens on 127.0.0.1 (an ephemeral port) and forwards every connection to
PostgreSQL (TCP or its Unix socket). Its mode changes at run time:

* ``pass``: bytes go through untouched;
* ``latency``: every chunk, either way, waits ``latency`` seconds first (order kept);
* ``reset``: every open connection is closed abruptly (RST), and so is every new one;
* ``blackhole``: connections are accepted and read, but nothing is forwarded and nothing
  answered. What a blackholed connection swallowed is gone, so when the proxy heals it
  closes such connections (as TCP would after its retransmissions gave up); connections that
  lost nothing carry on.

The check (``python -m reliability.fault_proxy``, ``make faults``) starts ``frontline serve``
with ``DATABASE_URL`` pointing at the proxy; writers post events with ids they chose while
the proxy cycles through the modes, and a prober asks ``/ready`` all along. Then the proxy
heals, every unacknowledged event is posted again (same id, same body), and the log is read
straight from PostgreSQL, not through the proxy: no 2xx without its event stored, nothing
stored twice, the hash chain verifies, no answer was a 500, none took unboundedly long, and
``/ready`` said 503 while the database was unreachable and 200 again after healing.

    python -m reliability.fault_proxy --cycles 3           # embedded PostgreSQL in a temp folder
    DATABASE_URL=postgresql://... python -m reliability.fault_proxy   # a given server
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import json
import socket
import struct
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import asyncpg
import httpx

from bench.servers import FRONTLINE, ServerProcess, check_database, free_port
from service.store.audit import AuditReader
from service.store.keys import KeyStore

HOST: Final = "127.0.0.1"
WRITERS: Final = 4
CHUNK: Final = 65536

DB_TIMEOUT: Final = 2.0
"""FRONTLINE_DB_TIMEOUT of the service under test: short, so that a cycle is short."""
CLIENT_TIMEOUT: Final = 60.0
"""An answer slower than this counts as a hang (the service must answer long before)."""
READY_BOUND: Final = 8.0
"""The slowest ``/ready`` answer accepted while the database is unreachable (seconds)."""


class Mode(enum.StrEnum):
    """What the proxy does with the bytes."""

    PASS = "pass"  # noqa: S105 (a mode's name, not a password)
    LATENCY = "latency"
    RESET = "reset"
    BLACKHOLE = "blackhole"


@dataclass(eq=False)
class _Link:
    """One client connection and, unless it was born blackholed, its upstream."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    lost_bytes: bool = False
    """Something it carried was swallowed by a blackhole: its stream cannot resume."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        """Close both ends at once, with a RST rather than a FIN."""
        for writer in (self.client, self.upstream):
            if writer is None:
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """A TCP proxy on loopback in front of PostgreSQL whose faults change at run time."""

    def __init__(
        self,
        *,
        upstream_host: str | None = None,
        upstream_port: int = 5432,
        upstream_socket: str | None = None,
        latency: float = 0.05,
    ) -> None:
        if (upstream_host is None) == (upstream_socket is None):
            raise ValueError("give either upstream_host or upstream_socket")
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.upstream_socket = upstream_socket
        self.latency = latency
        self.mode = Mode.PASS
        self.port = 0
        self.connections = 0
        """Connections accepted so far."""
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    @classmethod
    def for_url(cls, url: str, latency: float = 0.05) -> FaultProxy:
        """A proxy in front of the server a PostgreSQL URL names (TCP or ``?host=/socket/dir``)."""
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        port = int(query.get("port", [parts.port or 5432])[0])
        host = query.get("host", [parts.hostname or "localhost"])[0]
        if host.startswith("/"):
            return cls(upstream_socket=f"{host}/.s.PGSQL.{port}", latency=latency)
        return cls(upstream_host=host, upstream_port=port, latency=latency)

    def url(self, upstream_url: str) -> str:
        """``upstream_url`` with its host and port replaced by the proxy's."""
        parts = urlsplit(upstream_url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items() if k not in ("host", "port")}
        query["sslmode"] = "disable"  # loopback: no TLS handshake through the proxy
        user = parts.username or ""
        auth = f"{user}:{parts.password or ''}@" if user else ""
        return urlunsplit(
            parts._replace(netloc=f"{auth}{HOST}:{self.port}", query=urlencode(query))
        )

    async def start(self) -> int:
        """Listen on 127.0.0.1, on a port the system picks; return it."""
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.abort()
        self._links.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def set_mode(self, mode: Mode) -> None:
        """Switch faults. ``reset`` drops every connection now; leaving ``blackhole`` drops the
        connections whose bytes it swallowed."""
        self.mode = mode
        for link in list(self._links):
            if mode is Mode.RESET or (mode is not Mode.BLACKHOLE and link.lost_bytes):
                self._drop(link)

    def _drop(self, link: _Link) -> None:
        self._links.discard(link)
        link.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        link = _Link(client=writer)
        if self.mode is Mode.RESET:
            link.abort()
            return
        self._links.add(link)
        if self.mode is Mode.BLACKHOLE:
            # No upstream at all: the client's bytes go nowhere and nothing answers.
            link.lost_bytes = True
            await self._swallow(reader, link)
            return
        try:
            if self.upstream_socket is not None:
                up_reader, up_writer = await asyncio.open_unix_connection(self.upstream_socket)
            else:
                assert self.upstream_host is not None
                up_reader, up_writer = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port
                )
        except OSError:
            self._drop(link)
            return
        link.upstream = up_writer
        if link not in self._links:  # reset while connecting
            link.abort()
            return
        link.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, link)),
            asyncio.create_task(self._pump(up_reader, writer, link)),
        ]
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*link.tasks)
        self._drop(link)

    async def _swallow(self, reader: asyncio.StreamReader, link: _Link) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while await reader.read(CHUNK):
                pass
        self._drop(link)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        """Copy one direction, each chunk as the mode says when it arrives."""
        try:
            while data := await reader.read(CHUNK):
                if self.mode is Mode.LATENCY:
                    await asyncio.sleep(self.latency)
                if self.mode is Mode.BLACKHOLE:
                    link.lost_bytes = True
                    continue
                if self.mode is Mode.RESET or link.lost_bytes:
                    break
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        # One side finished or failed: the other cannot go on alone.
        self._drop(link)


# --- the check -------------------------------------------------------------------------


@dataclass
class Report:
    """What the faults did to the answers, and what the log holds afterwards."""

    cycles: int = 0
    acknowledged: set[str] = field(default_factory=set)
    unacknowledged: set[str] = field(default_factory=set)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: Counter[str] = field(default_factory=Counter)
    """Every answer of a writer by ``mode status`` (or ``mode ExceptionName``); the mode is
    ``a>b`` when it changed from ``a`` to ``b`` while the request was in flight."""
    reads: Counter[str] = field(default_factory=Counter)
    """Every answer of the reader (``/v1/events``, ``/v1/state``), the same way."""
    server_errors: int = 0
    """Answers 500 or above other than 503 (must stay 0)."""
    slowest_answer: float = 0.0
    """Seconds, any POST during faults."""
    reasons: Counter[str] = field(default_factory=Counter)
    """The ``detail`` of every 503, by ``mode detail``."""
    ready_answers: Counter[str] = field(default_factory=Counter)
    """``/ready`` answers by ``mode status``."""
    slowest_ready_faulted: float = 0.0
    """The slowest ``/ready`` answer while blackholed or reset (seconds)."""
    ready_200_while_unreachable: int = 0
    """``/ready`` 200 asked and answered within one blackhole or reset (impossible unless
    the service says ready without asking the database)."""
    recovery_seconds: float | None = None
    """From healing to the first ``/ready`` 200 and the first 2xx POST, whichever is later."""
    retried_stored: int = 0
    """Unacknowledged events stored exactly once after their retry (counted in PostgreSQL)."""
    stale_retries: int = 0
    """Retries answered 200 (stored before the answer was lost) rather than 201."""
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    chain_ok: bool = False

    def ok(self) -> bool:
        """Every assertion the check makes."""
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.chain_ok
            and self.server_errors == 0
            and self.ready_200_while_unreachable == 0
            and self.faulted_2xx() == 0
            and self.slowest_ready_faulted <= READY_BOUND
            and self.slowest_answer < CLIENT_TIMEOUT
            and self.recovery_seconds is not None
            and self.retried_stored == len(self.unacknowledged)
            and self.stored == len(self.acknowledged) + len(self.unacknowledged)
        )

    def faulted_2xx(self) -> int:
        """POSTs and reads answered 2xx that began and ended within one blackhole or reset:
        the database saw none of them, so none may succeed."""
        return sum(
            n
            for counter in (self.answers, self.reads)
            for key, n in counter.items()
            if key.split()[0] in (Mode.BLACKHOLE, Mode.RESET) and key.split()[1] in ("200", "201")
        )

    def lines(self) -> list[str]:
        recovery = "never" if self.recovery_seconds is None else f"{self.recovery_seconds:.2f} s"
        return [
            f"cycles (pass, latency, reset, blackhole): {self.cycles}",
            f"acknowledged events lost: {self.lost} of {len(self.acknowledged)}",
            f"unacknowledged events: {len(self.unacknowledged)}, stored once after a retry "
            f"with the same id: {self.retried_stored} (of which stored before their answer was "
            f"lost: {self.stale_retries})",
            f"events stored twice: {self.duplicated}",
            f"events in the log: {self.stored}",
            f"hash chain verifies: {'yes' if self.chain_ok else 'NO'}",
            f"answers 500 or other 5xx but 503: {self.server_errors}",
            f"slowest answer to a POST or a read: {self.slowest_answer:.2f} s",
            "POST answers by mode: " + _counts(self.answers),
            "read answers by mode: " + _counts(self.reads),
            "/ready answers by mode: " + _counts(self.ready_answers),
            "503 reasons by mode: " + _counts(self.reasons),
            f"slowest /ready while blackholed or reset: {self.slowest_ready_faulted:.2f} s",
            f"/ready 200 while the database was unreachable: {self.ready_200_while_unreachable}",
            f"POSTs and reads 2xx while the database was unreachable: {self.faulted_2xx()}",
            f"recovery after healing (/ready 200 and a 2xx POST): {recovery}",
        ]


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items()))


def _event(event_id: str, n: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "control",
        "place": {"id": f"sy-fault-{n % 7}", "name": f"Fault {n % 7}"},
        "occurred": {"start": f"2017-06-{1 + n % 28:02d}", "precision": "day"},
        "source": {"name": f"Writer {n % WRITERS}", "reliability": "C"},
        "side": "isis",
    }


@dataclass
class _Clock:
    """The proxy's mode and since when, for tagging answers."""

    proxy: FaultProxy
    since: float = field(default_factory=time.monotonic)
    healed_at: float | None = None

    def switch(self, mode: Mode) -> None:
        self.proxy.set_mode(mode)
        self.since = time.monotonic()

    def span(self, began: Mode) -> str:
        """``began``, or ``began>now`` when the mode changed since."""
        return str(began) if self.proxy.mode is began else f"{began}>{self.proxy.mode}"


async def _writer(
    client: httpx.AsyncClient, start: int, report: Report, clock: _Clock, stop: asyncio.Event
) -> None:
    """Post events one at a time, each with a new id, whatever the answers."""
    n = start
    while not stop.is_set():
        event_id = str(uuid.uuid4())
        report.bodies[event_id] = _event(event_id, n)
        n += WRITERS
        mode = clock.proxy.mode
        began = time.monotonic()
        try:
            response = await client.post("/v1/events", json=report.bodies[event_id])
        except httpx.HTTPError as error:
            report.unacknowledged.add(event_id)
            report.answers[f"{clock.span(mode)} {type(error).__name__}"] += 1
            report.slowest_answer = max(report.slowest_answer, time.monotonic() - began)
            await asyncio.sleep(0.1)
            continue
        elapsed = time.monotonic() - began
        report.slowest_answer = max(report.slowest_answer, elapsed)
        report.answers[f"{clock.span(mode)} {response.status_code}"] += 1
        if response.status_code in (200, 201):
            report.acknowledged.add(event_id)
            continue
        report.unacknowledged.add(event_id)
        _note_reason(report, mode, response)
        if response.status_code >= 500 and response.status_code != 503:
            report.server_errors += 1
        await asyncio.sleep(0.1)  # a client backs off a little after a failure


async def _reader(
    client: httpx.AsyncClient, report: Report, clock: _Clock, stop: asyncio.Event
) -> None:
    """Read a page of the log and the front, over and over: 200 or 503, never a 500."""
    paths = ("/v1/events?limit=20", "/v1/state?valid_at=2017-06-05&limit=20")
    n = 0
    while not stop.is_set():
        path = paths[n % len(paths)]
        n += 1
        mode = clock.proxy.mode
        began = time.monotonic()
        try:
            response = await client.get(path)
        except httpx.HTTPError as error:
            report.reads[f"{clock.span(mode)} {type(error).__name__}"] += 1
            await asyncio.sleep(0.1)
            continue
        finally:
            report.slowest_answer = max(report.slowest_answer, time.monotonic() - began)
        report.reads[f"{clock.span(mode)} {response.status_code}"] += 1
        _note_reason(report, mode, response)
        if response.status_code >= 500 and response.status_code != 503:
            report.server_errors += 1
        await asyncio.sleep(0.1)


def _note_reason(report: Report, mode: Mode, response: httpx.Response) -> None:
    if response.status_code == 503:
        detail = str(response.json().get("detail", ""))
        report.reasons[f"{mode} {response.request.url.path} {detail[:70]}"] += 1


async def _prober(
    client: httpx.AsyncClient, report: Report, clock: _Clock, stop: asyncio.Event
) -> None:
    """Ask ``/ready`` every 0.2 s; note how long each answer took, and what it said."""
    while not stop.is_set():
        mode, since = clock.proxy.mode, clock.since
        began = time.monotonic()
        try:
            response = await client.get("/ready")
            status = str(response.status_code)
            _note_reason(report, mode, response)
        except httpx.HTTPError as error:
            status = type(error).__name__
        elapsed = time.monotonic() - began
        report.ready_answers[f"{clock.span(mode)} {status}"] += 1
        if mode in (Mode.BLACKHOLE, Mode.RESET) and clock.proxy.mode is mode:
            report.slowest_ready_faulted = max(report.slowest_ready_faulted, elapsed)
            if status == "200" and began >= since:
                report.ready_200_while_unreachable += 1
        if status.startswith("5") and status != "503":
            report.server_errors += 1
        await asyncio.sleep(0.2)


async def _recovered(client: httpx.AsyncClient, key: str, deadline: float) -> bool:
    """Wait for ``/ready`` 200 and a 2xx POST after healing; False if ``deadline`` passes."""
    ready = posted = False
    probe = str(uuid.uuid4())
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if not ready:
                ready = (await client.get("/ready")).status_code == 200
            if ready and not posted:
                response = await client.post(
                    "/v1/events",
                    json=_event(probe, 0),
                    headers={"authorization": f"Bearer {key}"},
                )
                posted = response.status_code in (200, 201)
            if ready and posted:
                return True
        await asyncio.sleep(0.1)
    return False


async def serve_through(url: str, work: Path) -> ServerProcess:
    """``frontline serve`` on ``url`` (the proxy's), with ``FRONTLINE_DB_TIMEOUT=DB_TIMEOUT``."""
    port = free_port()
    service = ServerProcess(
        name="service",
        command=[*FRONTLINE, "serve", "--port", str(port)],
        env={
            "DATABASE_URL": url,
            "FRONTLINE_LOG_FORMAT": "json",
            "FRONTLINE_DB_TIMEOUT": str(DB_TIMEOUT),
        },
        log_path=work / "service.log",
        port=port,
        ready_path="/ready",
    )
    # In a thread: it waits for /ready, and the proxy it connects through runs on this loop.
    await asyncio.to_thread(service.start)
    return service


async def _retry_unacknowledged(client: httpx.AsyncClient, report: Report) -> None:
    for event_id in sorted(report.unacknowledged):
        # The same id and body: 201 stores it now, 200 says it was stored before its answer
        # was lost. Either way once. A 503 right after healing is waited out.
        for _ in range(50):
            response = await client.post("/v1/events", json=report.bodies[event_id])
            if response.status_code != 503:
                break
            await asyncio.sleep(0.2)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"retry of {event_id}: {response.status_code} {response.text}")
        if response.status_code == 200:
            report.stale_retries += 1


async def _count(url: str, report: Report, probes: int) -> None:
    """Read the log straight from PostgreSQL, not through the proxy."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id::text AS id, count(*) AS n FROM events GROUP BY id")
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        report.chain_ok = (await AuditReader(pool, None).verify(None, None)).ok
    finally:
        await pool.close()
    counts = {r["id"]: r["n"] for r in rows}
    report.stored = len(counts) - probes  # the recovery probes are not the writers'
    report.lost = sum(1 for i in report.acknowledged if counts.get(i, 0) != 1)
    report.retried_stored = sum(1 for i in report.unacknowledged if counts.get(i, 0) == 1)
    report.duplicated = sum(1 for n in counts.values() if n > 1)


async def run(
    url: str, work: Path, *, cycles: int = 3, phase: float = 4.0, latency: float = 0.05
) -> Report:
    """Cycle the proxy ``cycles`` times through latency, reset and blackhole (``phase``
    seconds each, after ``phase`` seconds of pass) while writers post; heal; retry; count."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        keys = KeyStore(pool)
        _, key = await keys.create(f"faults-{uuid.uuid4().hex[:8]}", "ingest")
        _, read_key = await keys.create(f"faults-read-{uuid.uuid4().hex[:8]}", "read")
    finally:
        await pool.close()
    proxy = FaultProxy.for_url(url, latency=latency)
    await proxy.start()
    service = await serve_through(proxy.url(url), work)
    report = Report()
    clock = _Clock(proxy)
    probes = 0
    try:
        base = f"http://{HOST}:{service.port}"
        headers = {"authorization": f"Bearer {key}"}
        async with (
            httpx.AsyncClient(base_url=base, headers=headers, timeout=CLIENT_TIMEOUT) as writing,
            httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT) as probing,
            httpx.AsyncClient(
                base_url=base,
                headers={"authorization": f"Bearer {read_key}"},
                timeout=CLIENT_TIMEOUT,
            ) as reading,
        ):
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(_writer(writing, w + 1, report, clock, stop))
                for w in range(WRITERS)
            ]
            tasks.append(asyncio.create_task(_prober(probing, report, clock, stop)))
            tasks.append(asyncio.create_task(_reader(reading, report, clock, stop)))
            for _ in range(cycles):
                for mode in Mode:
                    clock.switch(mode)
                    await asyncio.sleep(phase)
                report.cycles += 1
            clock.switch(Mode.PASS)
            healed = time.monotonic()
            if await _recovered(probing, key, healed + 60):
                report.recovery_seconds = time.monotonic() - healed
            probes = 1
            stop.set()
            await asyncio.gather(*tasks)
            await _retry_unacknowledged(writing, report)
    finally:
        service.stop()
        await proxy.close()
    await _count(url, report, probes)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; print the report; exit 1 when any assertion fails."""
    parser = argparse.ArgumentParser(prog="python -m reliability.fault_proxy")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--phase", type=float, default=4.0, help="seconds in each mode")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added per chunk")
    args = parser.parse_args(argv)
    with check_database("frontline-faults-") as (url, folder):
        report = asyncio.run(
            run(url, folder, cycles=args.cycles, phase=args.phase, latency=args.latency)
        )
    sys.stdout.write("\n".join(report.lines()) + "\n")
    sys.stdout.write(
        json.dumps(
            {
                "lost": report.lost,
                "acknowledged": len(report.acknowledged),
                "duplicated": report.duplicated,
                "server_errors": report.server_errors,
                "slowest_ready_faulted": round(report.slowest_ready_faulted, 2),
                "recovery_seconds": report.recovery_seconds,
            }
        )
        + "\n"
    )
    return 0 if report.ok() else 1


if __name__ == "__main__":
    raise SystemExit(main())
