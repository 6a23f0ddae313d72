"""Several workers and conditional GETs (issue 18): ``GET /v1/state`` for a box of 1,000
places, served by ``frontline serve --workers 2`` against ``--workers 1``, and a conditional
GET (``If-None-Match``) of a pinned answer against computing it, ratios in the same run.

    .venv/bin/python -m bench.workers                 # about 3 minutes
    .venv/bin/python -m bench.workers --seconds 10 --rounds 1   # a quick look

PostgreSQL: an embedded one in a temporary folder (or ``DATABASE_URL``'s server), a database
of the run's own. The log: 1,000 places on a 40 x 25 grid inside one box, three control
reports each (3,000 events, one NDJSON import). The load: ``--connections`` keep-alive
connections from this process (raw asyncio streams, ``bench/client.py``), each sending the
next request when the answer has arrived, for ``--seconds`` a phase after a warm-up;
phases alternate (1 worker, 2 workers, ...) for ``--rounds`` rounds, so load on the shared
machine falls on both alike. CPU per request: the service's processes (the supervisor and
its workers), PostgreSQL's backends and this client, from /proc, over each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from bench import client
from bench.client import read_response, upload
from bench.servers import (
    FRONTLINE,
    CpuMeter,
    EmbeddedPostgres,
    ServerProcess,
    _children,
    free_port,
    grant_key,
    recreate_database,
    run_checked,
)

HOST: Final = "127.0.0.1"
PLACES: Final = 1000
COLUMNS: Final = 40
BOX: Final = (38.0, 36.0, 39.0, 37.0)
"""West, south, east, north: every place lies inside."""
SIDES: Final = ("isis", "sdf", "government")
OUT: Final = Path(__file__).parent / "out"


def log_lines() -> bytes:
    """The log as NDJSON: three control reports for each of PLACES places in BOX."""
    west, south, east, north = BOX
    rows = PLACES // COLUMNS
    lines: list[bytes] = []
    for n in range(PLACES):
        lon = west + (east - west) * (n % COLUMNS + 0.5) / COLUMNS
        lat = south + (north - south) * (n // COLUMNS + 0.5) / rows
        for k in range(3):
            body = {
                "id": str(uuid.UUID(int=n * 3 + k + 1)),
                "type": "control",
                "place": {"id": f"sy-bench-{n}", "name": f"Bench {n}", "lat": lat, "lon": lon},
                "occurred": {"start": f"2017-06-{1 + 7 * k + n % 7:02d}", "precision": "day"},
                "source": {"name": f"Source {(n + k) % 5}", "reliability": "B"},
                "side": SIDES[(n + k) % 3],
            }
            lines.append(json.dumps(body).encode())
    return b"\n".join(lines) + b"\n"


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    requests: int
    seconds: float
    statuses: dict[int, int]
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def cpu_ms(self, group: str) -> float:
        """CPU milliseconds per request of one group (service, postgres, client)."""
        return 1000 * self.cpu.get(group, 0.0) / max(1, self.requests)


async def load(
    port: int, target: str, headers: str, connections: int, seconds: float
) -> tuple[int, dict[int, int]]:
    """GET ``target`` from ``connections`` keep-alive connections for ``seconds``; the
    number of answers and their statuses."""
    request = f"GET {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{client.AUTH}{headers}\r\n"
    data = request.encode()
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    done = 0

    async def one() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 22)
        try:
            while time.perf_counter() < deadline:
                writer.write(data)
                answer = await read_response(reader)
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
                done += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return done, statuses


def _client_pid() -> list[int]:
    return [os.getpid()]


async def measure(
    name: str,
    server: ServerProcess,
    postmaster: int | None,
    target: str,
    headers: str,
    *,
    connections: int,
    seconds: float,
    warmup: float,
) -> Phase:
    """Warm up, then one measured phase of GETs with CPU metered."""
    await load(server.port, target, headers, connections, warmup)
    service = [server.pid, *_children(server.pid)]
    service += [pid for child in list(service[1:]) for pid in _children(child)]
    meter = CpuMeter({"service": service, "client": _client_pid()}, postmaster=postmaster)
    started = time.perf_counter()
    with meter:
        requests, statuses = await load(server.port, target, headers, connections, seconds)
    elapsed = time.perf_counter() - started
    return Phase(name, requests, elapsed, statuses, meter.seconds)


def serve(url: str, work: Path, workers: int) -> ServerProcess:
    """``frontline serve --workers N`` on ``url``, answering /ready."""
    port = free_port()
    server = ServerProcess(
        name=f"service-{workers}w",
        command=[*FRONTLINE, "serve", "--port", str(port), "--workers", str(workers)],
        env={
            "DATABASE_URL": url,
            "FRONTLINE_LOG_FORMAT": "json",
            "FRONTLINE_LOG_LEVEL": "warning",
            "FRONTLINE_RATE_LIMIT": "0",
            "FRONTLINE_POOL_MAX": "10",
        },
        log_path=work / f"service-{workers}w.log",
        port=port,
        ready_path="/ready",
    )
    server.start(timeout=120)
    return server


async def run(
    args: argparse.Namespace, url: str, postmaster: int | None, work: Path
) -> dict[str, Any]:
    """Every phase; the figures."""
    key = "flk_bench_" + uuid.uuid4().hex
    await grant_key(url, key)
    client.AUTH = f"Authorization: Bearer {key}\r\n"
    log_file = work / "log.ndjson"
    log_file.write_bytes(log_lines())
    events = PLACES * 3
    box = ",".join(f"{v:g}" for v in BOX)
    computed = f"/v1/state?bbox={box}&valid_at=2017-06-20&limit={PLACES}"
    pinned = f"{computed}&known_at=position:{events}"
    phases: list[Phase] = []
    conditional: list[Phase] = []
    first = serve(url, work, 1)
    try:
        answer = await upload(HOST, first.port, "/v1/events", log_file, "application/x-ndjson")
        if answer.status not in (200, 201):
            raise RuntimeError(f"import: {answer.status} {answer.body[:300]!r}")
        # The answer really holds the box's places, and its pinned tag.
        reader, writer = await asyncio.open_connection(HOST, first.port, limit=1 << 22)
        writer.write(f"GET {pinned} HTTP/1.1\r\nHost: {HOST}\r\n{client.AUTH}\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        etag = next(
            line.split(b":", 1)[1].strip().decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"etag:")
        )
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = json.loads(await reader.readexactly(length))
        writer.close()
        places = len(body["items"])
        if places != PLACES:
            raise RuntimeError(f"the box's answer holds {places} places, not {PLACES}")
    finally:
        first.stop()
    for round_ in range(args.rounds):
        for workers in (1, 2) if round_ % 2 == 0 else (2, 1):
            server = serve(url, work, workers)
            try:
                phases.append(
                    await measure(
                        f"{workers}w",
                        server,
                        postmaster,
                        computed,
                        "",
                        connections=args.connections,
                        seconds=args.seconds,
                        warmup=args.warmup,
                    )
                )
                if workers == 1:
                    for name, headers in (
                        ("pinned-computed", ""),
                        ("pinned-304", f"If-None-Match: {etag}\r\n"),
                    ):
                        conditional.append(
                            await measure(
                                name,
                                server,
                                postmaster,
                                pinned,
                                headers,
                                connections=args.connections,
                                seconds=args.seconds,
                                warmup=args.warmup,
                            )
                        )
            finally:
                server.stop()

    def rate(phases_: list[Phase], name: str) -> float:
        return statistics.mean(p.rate for p in phases_ if p.name == name)

    def cpu(phases_: list[Phase], name: str, group: str) -> float:
        return statistics.mean(p.cpu_ms(group) for p in phases_ if p.name == name)

    groups = ("service", "postgres", "client")
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_before": os.getloadavg(),
        "connections": args.connections,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "places": PLACES,
        "events": events,
        "workers_ratio": rate(phases, "2w") / rate(phases, "1w"),
        "conditional_ratio": rate(conditional, "pinned-304") / rate(conditional, "pinned-computed"),
        "rates": {
            name: rate(source, name)
            for source, names in (
                (phases, ("1w", "2w")),
                (conditional, ("pinned-computed", "pinned-304")),
            )
            for name in names
        },
        "cpu_ms_per_request": {
            name: {group: cpu(source, name, group) for group in groups}
            for source, names in (
                (phases, ("1w", "2w")),
                (conditional, ("pinned-computed", "pinned-304")),
            )
            for name in names
        },
        "phases": [
            {
                "name": p.name,
                "requests": p.requests,
                "seconds": round(p.seconds, 2),
                "rate": round(p.rate, 1),
                "statuses": p.statuses,
                "cpu_s": {k: round(v, 2) for k, v in p.cpu.items()},
            }
            for p in [*phases, *conditional]
        ],
    }


def table(figures: dict[str, Any]) -> str:
    """The figures as the lines docs/benchmarks.md records."""
    rates = figures["rates"]
    cpu = figures["cpu_ms_per_request"]
    lines = [
        f"GET /v1/state, box of {figures['places']} places, {figures['connections']} connections, "
        f"{figures['seconds']} s a phase, {figures['rounds']} round(s); load before "
        f"{', '.join(f'{x:.2f}' for x in figures['load_before'])}",
    ]
    for name in ("1w", "2w", "pinned-computed", "pinned-304"):
        c = cpu[name]
        lines.append(
            f"  {name:16} {rates[name]:9.1f} req/s   CPU ms/request: service {c['service']:.2f}, "
            f"postgres {c['postgres']:.2f}, client {c['client']:.2f}"
        )
    lines.append(f"2 workers / 1 worker: {figures['workers_ratio']:.2f} (goal >= 1.3)")
    lines.append(
        f"conditional GET (304) / computing the pinned answer: {figures['conditional_ratio']:.1f} "
        "(goal >= 10)"
    )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=16, help="keep-alive connections (16)")
    p.add_argument("--seconds", type=float, default=15.0, help="seconds a measured phase (15)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up a phase (3)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of 1 and 2 workers (2)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table; write the figures to bench/out/."""
    args = parser().parse_args(argv)
    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="frontline-bench-workers-"))
    external = os.environ.get("DATABASE_URL")
    embedded = None if external else EmbeddedPostgres(work / "db", remove=True)
    server_url = external or embedded.start()  # type: ignore[union-attr]
    try:
        url = asyncio.run(recreate_database(server_url, "frontline_bench_workers"))
        run_checked([*FRONTLINE, "migrate"], {"DATABASE_URL": url}, work / "migrate.log")
        postmaster = embedded.postmaster_pid() if embedded is not None else None
        figures = asyncio.run(run(args, url, postmaster, work))
    finally:
        if embedded is not None:
            embedded.stop()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = OUT / f"workers-{stamp}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    sys.stdout.write(table(figures) + f"\nfigures: {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
