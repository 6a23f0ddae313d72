"""The rebuild benchmark: its speed, the service's memory, and the service beside it.

On the generated workload (``bench/workload.py``: Zipf-skewed over 20,000 places, 5 %
backdated, 2 % retracted, 5 % conflicting), imported into a service with projections off:

1. speed: ``POST /v1/admin/rebuild`` of the whole log on a service as shipped (projections on),
   against "a bare cursor read folded into a dict": one asyncpg cursor over
   ``read_log_for_rebuild.sql``, each payload decoded and folded into a dict (place: latest
   type and side); best of ``--rounds`` each, alternating who goes first. Goal >= 0.25.
2. memory: the resident memory of the service's process and of its children (the rebuild's
   worker processes) sampled every 50 ms during each rebuild: the high-water mark of the
   sum, and of the service's own process.
3. the service beside a rebuild: ``GET /health``, ``GET /v1/state`` for a box of about 1,000
   places, and single-event ``POST /v1/events``, each on its own keep-alive connection at
   ``--probe-rate`` requests per second, for a quiet window (after a warm-up, unmeasured:
   the service's fold cache starts empty) and then during a rebuild (which also catches up
   with those POSTs): p50 and p99 of each, and the ratio of the p99s. Goal: during <= 2x
   quiet.

    python -m bench.rebuild --scale 100000          # about 5 minutes here
    python -m bench.rebuild --scale 1000000 --segment 100000

Results go to ``bench/out/rebuild-<time>.json`` (and ``rebuild-latest.json``); a markdown
table is printed. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg
import msgspec

from bench import client
from bench.client import read_response, upload
from bench.run import HOST, NDJSON, OUT, import_files, machine_info, post_bodies, source_revision
from bench.servers import (
    VENV_BIN,
    EmbeddedPostgres,
    ServerProcess,
    drop_database,
    free_port,
    grant_key,
    recreate_database,
    run_checked,
)
from bench.workload import DAYS, FIRST_DAY, Workload
from service.projections.queries import SQL
from service.roles import new_key

DATABASE: Final = "frontline_rebuild"
GOALS: Final = {"rebuild": 0.25, "p99_during_over_quiet": 2.0}
BOX_PLACES: Final = 1000
PAGE_KIB: Final = os.sysconf("SC_PAGE_SIZE") // 1024


def parser() -> argparse.ArgumentParser:
    """The command line."""
    args = argparse.ArgumentParser(
        prog="python -m bench.rebuild", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    args.add_argument("--scale", type=int, default=100_000, help="events imported")
    args.add_argument("--segment", type=int, default=20_000, help="events per import file")
    args.add_argument("--rounds", type=int, default=2, help="rebuild rounds, each side")
    args.add_argument("--probe-rate", type=float, default=20.0, help="requests/s of each probe")
    args.add_argument("--quiet-seconds", type=float, default=20.0, help="the quiet probe window")
    args.add_argument(
        "--warmup-seconds", type=float, default=20.0, help="probes before the quiet window"
    )
    args.add_argument("--workers", type=int, default=0, help="FRONTLINE_REBUILD_WORKERS")
    args.add_argument("--seed", type=int, default=1, help="workload seed")
    args.add_argument("--out", type=Path, default=OUT, help="results and workload files")
    args.add_argument("--data-dir", type=Path, default=None, help="keep the embedded PostgreSQL")
    return args


# --------------------------------------------------------------------------------------------
# Memory of a process tree


def _rss_kib(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0
    return int(fields[1]) * PAGE_KIB


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            with suppress(OSError):
                children = [int(c) for c in (task / "children").read_text().split()]
                found.extend(children)
                pending.extend(children)
    return found


def _sample(pid: int, period: float, stop: Any, peaks: Any) -> None:
    """In a process of its own (so that the load client's latencies do not pay for it): the
    peaks of a process tree's resident memory, until ``stop`` is set."""
    while not stop.is_set():
        main = _rss_kib(pid)
        children = _descendants(pid)
        total = main + sum(_rss_kib(c) for c in children)
        peaks[0] = max(peaks[0], total)
        peaks[1] = max(peaks[1], main)
        peaks[2] = max(peaks[2], len(children))
        stop.wait(period)


@dataclass
class MemorySampler:
    """The resident memory of a process and its descendants, every ``period`` seconds,
    sampled by a separate process."""

    pid: int
    period: float = 0.05
    peak_total_kib: int = 0
    peak_main_kib: int = 0
    peak_children: int = 0
    _process: Any = None
    _stop: Any = None
    _peaks: Any = None

    def __enter__(self) -> MemorySampler:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._peaks = context.Array("q", 3)
        self._process = context.Process(
            target=_sample, args=(self.pid, self.period, self._stop, self._peaks), daemon=True
        )
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join()
        self.peak_total_kib, self.peak_main_kib, self.peak_children = list(self._peaks)

    def figures(self) -> dict[str, float]:
        return {
            "peak_total_mib": round(self.peak_total_kib / 1024, 1),
            "peak_service_process_mib": round(self.peak_main_kib / 1024, 1),
            "worker_processes": self.peak_children,
        }


# --------------------------------------------------------------------------------------------
# The probes: /health, a state box, single POSTs, each at a fixed rate on one connection


@dataclass
class Probe:
    """One kind of request, sent at a fixed rate on one keep-alive connection until told
    to stop; its latencies."""

    name: str
    port: int
    requests: list[bytes]
    rate: float
    latencies: list[float] = field(default_factory=list)
    failures: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection(HOST, self.port, limit=client.CHUNK)
        begun = time.perf_counter()
        try:
            for index, request in enumerate(self.requests):
                if stop.is_set():
                    return
                delay = begun + index / self.rate - time.perf_counter()
                if delay > 0:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                    if stop.is_set():
                        return
                started = time.perf_counter()
                writer.write(request)
                answer = await read_response(reader)
                self.latencies.append(time.perf_counter() - started)
                if answer.status >= 300:
                    self.failures += 1
        finally:
            writer.close()

    def figures(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        if not ordered:
            return {"requests": 0}

        def at(fraction: float) -> float:
            return round(
                ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)] * 1000, 2
            )

        return {
            "requests": len(ordered),
            "failures": self.failures,
            "p50_ms": at(0.5),
            "p99_ms": at(0.99),
            "max_ms": round(ordered[-1] * 1000, 2),
        }


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{client.AUTH}\r\n".encode()


def _post(body: bytes) -> bytes:
    return (
        f"POST /v1/events HTTP/1.1\r\nHost: {HOST}\r\n{client.AUTH}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@dataclass
class Bench:
    """One run: the service as shipped on a database that holds the imported log."""

    args: argparse.Namespace
    url: str
    service: ServerProcess
    figures: dict[str, Any] = field(default_factory=dict)
    _bodies: list[bytes] = field(default_factory=list)
    _box_side: float = 0.0
    _points: list[tuple[float, float]] = field(default_factory=list)

    async def sql(self, query: str, *params: Any) -> Any:
        conn = await asyncpg.connect(self.url)
        try:
            return await conn.fetchval(query, *params)
        finally:
            await conn.close()

    async def rebuild_once(self) -> dict[str, Any]:
        """One POST /v1/admin/rebuild: its seconds, its answer, the memory meanwhile."""
        reader, writer = await asyncio.open_connection(HOST, self.service.port)
        with MemorySampler(self.service.pid) as memory:
            started = time.perf_counter()
            try:
                writer.write(
                    f"POST /v1/admin/rebuild HTTP/1.1\r\nHost: {HOST}\r\n{client.AUTH}"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
                )
                answer = await read_response(reader)
            finally:
                writer.close()
            seconds = time.perf_counter() - started
        if answer.status != 200:
            raise RuntimeError(f"rebuild: {answer.status} {answer.body[:500]!r}")
        return {"seconds": seconds, "answer": json.loads(answer.body), **memory.figures()}

    def last_report(self) -> dict[str, Any]:
        """The service's log line of its last rebuild (rounds, time under the head lock...)."""
        found: dict[str, Any] = {}
        with self.service.log_path.open() as lines:
            for line in lines:
                if '"projections_rebuilt"' in line:
                    found = json.loads(line)
        return {k: v for k, v in found.items() if k not in ("request_id", "level", "event")}

    async def cursor_fold(self) -> int:
        """The baseline: one cursor over the same rows, decoded and folded into a dict."""
        decode = msgspec.json.decode
        latest: dict[str, tuple[Any, Any]] = {}
        conn = await asyncpg.connect(self.url)
        try:
            async with conn.transaction(readonly=True):
                async for row in conn.cursor(SQL.read_log_for_rebuild, prefetch=5000):
                    event = decode(row["payload"])
                    latest[row["place_id"]] = (event["type"], event.get("side"))
        finally:
            await conn.close()
        return len(latest)

    async def speed(self) -> None:
        events = int(await self.sql("SELECT count(*) FROM events"))
        service: list[dict[str, Any]] = []
        baseline: list[float] = []
        for round_ in range(self.args.rounds):
            for side in ("service", "baseline") if round_ % 2 == 0 else ("baseline", "service"):
                with suppress(asyncpg.PostgresError):
                    await self.sql("CHECKPOINT")
                if side == "service":
                    run = await self.rebuild_once()
                    service.append(run)
                    took = run["seconds"]
                else:
                    started = time.perf_counter()
                    assert await self.cursor_fold() > 0
                    took = time.perf_counter() - started
                    baseline.append(took)
                sys.stderr.write(f"rebuild round {round_ + 1} {side}: {took:.1f}s\n")
        best = min(service, key=lambda r: r["seconds"])
        self.figures["last_report"] = self.last_report()
        self.figures["speed"] = {
            "events": events,
            "service_seconds": [round(r["seconds"], 2) for r in service],
            "baseline_seconds": [round(s, 2) for s in baseline],
            "service_events_per_s": round(events / best["seconds"]),
            "baseline_events_per_s": round(events / min(baseline)),
            "ratio": round(min(baseline) / best["seconds"], 3),
            "rows": best["answer"]["rows"],
            "policy": best["answer"]["policy"],
        }
        self.figures["memory"] = {
            "rebuild_rounds": [
                {
                    k: r[k]
                    for k in ("peak_total_mib", "peak_service_process_mib", "worker_processes")
                }
                for r in service
            ],
            "peak_total_mib": max(r["peak_total_mib"] for r in service),
            "peak_service_process_mib": max(r["peak_service_process_mib"] for r in service),
        }

    def _probes(self, seconds: float, state_at: datetime) -> list[Probe]:
        rate = self.args.probe_rate
        count = math.ceil(seconds * rate) + 10
        rng = random.Random(len(self._bodies))
        boxes = []
        half = self._box_side / 2
        for _ in range(count):
            x, y = rng.choice(self._points)
            day = (state_at - timedelta(days=rng.randrange(0, 365))).date().isoformat()
            bbox = f"{x - half:.4f},{y - half:.4f},{x + half:.4f},{y + half:.4f}"
            boxes.append(_get(f"/v1/state?bbox={bbox}&valid_at={day}&limit=1000"))
        posts = [_post(self._bodies.pop()) for _ in range(min(count, len(self._bodies)))]
        port = self.service.port
        return [
            Probe("health", port, [_get("/health")] * count, rate),
            Probe("state_box", port, boxes, rate),
            Probe("post", port, posts, rate),
        ]

    async def beside(self) -> None:
        """The probes for a quiet window, then during a rebuild."""
        events = int(await self.sql("SELECT count(*) FROM events"))
        self._bodies = list(reversed(post_bodies(self.args.seed, 7, 40_000, self.args.scale)))
        points = [
            (p.lon, p.lat)
            for p in Workload(seed=self.args.seed, stream=0)._places
            if p.lon is not None and p.lat is not None
        ]
        west, east = min(x for x, _ in points), max(x for x, _ in points)
        south, north = min(y for _, y in points), max(y for _, y in points)
        self._points = points
        self._box_side = math.sqrt((east - west) * (north - south) * BOX_PLACES / len(points))
        state_at = datetime.combine(FIRST_DAY, datetime.min.time(), UTC) + timedelta(
            days=DAYS * events // self.args.scale
        )
        # Warm up first (not measured): after the rebuilds the service's fold cache is empty,
        # and its first POSTs to busy places fold their whole log.
        warm = self._probes(self.args.warmup_seconds, state_at)
        stop = asyncio.Event()
        runs = [asyncio.ensure_future(p.run(stop)) for p in warm]
        await asyncio.sleep(self.args.warmup_seconds)
        stop.set()
        await asyncio.gather(*runs)
        quiet = self._probes(self.args.quiet_seconds, state_at)
        stop = asyncio.Event()
        runs = [asyncio.ensure_future(p.run(stop)) for p in quiet]
        await asyncio.sleep(self.args.quiet_seconds)
        stop.set()
        await asyncio.gather(*runs)
        during = self._probes(self.figures["speed"]["service_seconds"][-1] * 3 + 60, state_at)
        stop = asyncio.Event()
        runs = [asyncio.ensure_future(p.run(stop)) for p in during]
        await asyncio.sleep(1.0)
        rebuild = await self.rebuild_once()
        stop.set()
        await asyncio.gather(*runs)
        self.figures["beside"] = {
            "report": self.last_report(),
            "probe_rate": self.args.probe_rate,
            "rebuild_seconds": round(rebuild["seconds"], 2),
            "rebuild_answer": rebuild["answer"],
            "memory": {k: rebuild[k] for k in ("peak_total_mib", "peak_service_process_mib")},
            "quiet": {p.name: p.figures() for p in quiet},
            "during": {p.name: p.figures() for p in during},
            "p99_ratio": {
                q.name: round(d.figures()["p99_ms"] / max(q.figures()["p99_ms"], 0.01), 2)
                for q, d in zip(quiet, during, strict=True)
            },
        }


def table(figures: dict[str, Any]) -> str:
    """The results as markdown."""
    speed, memory, beside = figures["speed"], figures["memory"], figures["beside"]
    lines = [
        "| benchmark | service | baseline | ratio | goal |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| full rebuild, events/s ({speed['events']:,} events) "
        f"| {speed['service_events_per_s']:,} | {speed['baseline_events_per_s']:,} "
        f"| **{speed['ratio']}** | >= {GOALS['rebuild']} |",
    ]
    for name in ("health", "state_box", "post"):
        q, d = beside["quiet"][name], beside["during"][name]
        lines.append(
            f"| {name} p99 ms, during a rebuild / quiet ({d['requests']} / {q['requests']} "
            f"requests) | {d['p99_ms']} | {q['p99_ms']} | **{beside['p99_ratio'][name]}** "
            f"| <= {GOALS['p99_during_over_quiet']} |"
        )
    report = beside["report"]
    lines.append(
        f"\nbeside the probes the rebuild took {beside['rebuild_seconds']} s, "
        f"{report.get('rounds')} catch-up rounds ({report.get('caught_up_cold')} places from "
        f"their whole log, {report.get('caught_up_warm')} from a kept fold); it held the head "
        f"lock {report.get('locked_seconds')} s for its last round and swap (after waiting "
        f"{report.get('lock_wait_seconds')} s for it)"
    )
    lines.append(
        f"memory high-water mark during a rebuild: service and its workers "
        f"{memory['peak_total_mib']} MiB, the service's own process "
        f"{memory['peak_service_process_mib']} MiB; during the rebuild beside the probes "
        f"{beside['memory']['peak_total_mib']} MiB"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Import, then the three benchmarks; write bench/out/rebuild-*.json; print the table."""
    args = parser().parse_args(argv)
    if args.scale % args.segment:
        parser().error("--scale must be a multiple of --segment")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    external = os.environ.get("DATABASE_URL") or None
    embedded: EmbeddedPostgres | None = None
    if external is None:
        folder = args.data_dir or Path(tempfile.mkdtemp(prefix="frontline-rebuild-pg-"))
        embedded = EmbeddedPostgres(folder, remove=args.data_dir is None)
    service: ServerProcess | None = None
    started = time.perf_counter()
    try:
        server_url = embedded.start() if embedded is not None else str(external)
        url = asyncio.run(recreate_database(server_url, DATABASE))
        key = new_key()
        client.AUTH = f"Authorization: Bearer {key}\r\n"
        env = {
            "DATABASE_URL": url,
            "FRONTLINE_LOG_FORMAT": "json",
            "FRONTLINE_RATE_LIMIT": "0",
            "FRONTLINE_REBUILD_WORKERS": str(args.workers),
        }
        run_checked([str(VENV_BIN / "frontline"), "migrate"], env, work / "migrate-rebuild.log")
        asyncio.run(grant_key(url, key))
        segments = import_files(work, args.seed, args.scale, args.scale // args.segment)

        def serve(extra: dict[str, str], name: str) -> ServerProcess:
            port = free_port()
            process = ServerProcess(
                name=name,
                command=[str(VENV_BIN / "frontline"), "serve", "--port", str(port)],
                env={**env, **extra},
                log_path=work / f"rebuild-{name}-{stamp}.log",
                port=port,
                ready_path="/health",
            )
            process.start()
            return process

        # The log is imported with projections off (the import is not what is measured).
        service = serve({"FRONTLINE_PROJECTIONS": "off"}, "import")
        for index, segment in enumerate(segments):
            answer = asyncio.run(upload(HOST, service.port, "/v1/events", segment.path, NDJSON))
            if answer.status != 201:  # 201: events stored anew
                raise RuntimeError(f"import failed: {answer.status} {answer.body[:500]!r}")
            sys.stderr.write(f"segment {index + 1}/{len(segments)} imported\n")
        service.stop()
        # As shipped, except that the stale projections wait for the first measured rebuild.
        service = serve({"FRONTLINE_REBUILD_STALE": "off"}, "on")
        bench = Bench(args, url, service)

        async def everything() -> None:
            await bench.speed()
            await bench.beside()

        asyncio.run(everything())
        figures = bench.figures
        figures["total_seconds"] = round(time.perf_counter() - started, 1)
        payload = {
            "machine": machine_info("", external is not None),
            "source": source_revision(),
            "command": shlex.join([sys.executable, "-m", "bench.rebuild", *(argv or sys.argv[1:])]),
            "figures": figures,
        }
        out = args.out / f"rebuild-{stamp}.json"
        out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        (args.out / "rebuild-latest.json").write_text(out.read_text())
        sys.stdout.write(table(figures) + f"\n\nresults: {out}\n")
        return 0
    finally:
        if service is not None:
            service.stop()
        if external is not None:
            with suppress(Exception):
                asyncio.run(drop_database(external, DATABASE))
        if embedded is not None and embedded.url:
            embedded.stop()


if __name__ == "__main__":
    raise SystemExit(main())
