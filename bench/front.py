"""The projections' benchmarks, each against a baseline measured in the same run.

1. ingest: the NDJSON import of N events into a service with projections on, against the
   same import into a second service with projections off (``FRONTLINE_PROJECTIONS=off``),
   each on its own database of the same server, segment by segment, alternating who goes
   first.
2. state: ``GET /v1/state`` for a random box holding about 1,000 places, at a random valid
   time and a random known position: p50 and p99, once the log holds ``--small`` events and
   again at N. The goal compares the two p99s.
3. rebuild: ``POST /v1/admin/rebuild`` of the whole log, against a bare asyncpg cursor over
   the same query (``read_log_for_rebuild.sql``) whose rows are decoded and folded into a
   dict in Python (each place's latest type and side), best of ``--rounds`` each.
4. verify: ``GET /v1/audit/verify?projections=off`` of the whole log (the chain and the
   links), against a bare asyncpg cursor over the same query
   (``read_log_for_verify.sql``) hashing each payload and chaining each record with hashlib,
   best of ``--rounds`` each. ``bench.verify`` measures the projections' check.
5. live: 10 SSE subscribers of ``GET /v1/events/stream`` while single POSTs arrive
   at 500 events/s: the lag from each event's ``recorded_at`` to its arrival, p50 and p99.

    python -m bench.front                   # 1,000,000 events (about 20 min)
    python -m bench.front --scale 100000 --small 20000   # a quick run

Results go to ``bench/out/front-<time>.json`` (and ``front-latest.json``); a markdown table
is printed. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import random
import shlex
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg
import msgspec

from bench import client
from bench.client import post_load, read_response, upload
from bench.run import HOST, NDJSON, OUT, import_files, machine_info, post_bodies, source_revision
from bench.servers import (
    VENV_BIN,
    CpuMeter,
    EmbeddedPostgres,
    ServerProcess,
    drop_database,
    free_port,
    grant_key,
    memory_mib,
    recreate_database,
    run_checked,
)
from bench.workload import DAYS, FIRST_DAY, Workload
from service.projections.queries import SQL as PROJECTION_SQL
from service.roles import new_key
from service.store.queries import SQL as STORE_SQL

DATABASES: Final = {"on": "frontline_front_on", "off": "frontline_front_off"}
GOALS: Final = {"ingest": 0.5, "state_p99": 1.3, "rebuild": 0.25, "verify": 0.5}
BOX_PLACES: Final = 1000
SUBSCRIBERS: Final = 10
LIVE_RATE: Final = 500.0


def parser() -> argparse.ArgumentParser:
    """The command line."""
    args = argparse.ArgumentParser(
        prog="python -m bench.front", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    args.add_argument("--scale", type=int, default=1_000_000, help="events imported")
    args.add_argument("--small", type=int, default=100_000, help="log size of the first state run")
    args.add_argument("--segment", type=int, default=100_000, help="events per import segment")
    args.add_argument("--queries", type=int, default=400, help="state queries per run")
    args.add_argument("--rounds", type=int, default=2, help="rebuild rounds, each side")
    args.add_argument("--seed", type=int, default=1, help="workload seed")
    args.add_argument(
        "--live-seconds", type=float, default=10.0, help="seconds of POSTs at 500/s (live lag)"
    )
    args.add_argument("--out", type=Path, default=OUT, help="results and workload files")
    args.add_argument("--data-dir", type=Path, default=None, help="keep the embedded PostgreSQL")
    args.add_argument(
        "--verify-only",
        action="store_true",
        help="import into the projections-off service only, then benchmark verify on it",
    )
    return args


@dataclass
class Bench:
    """One run: two services (projections on and off) on two databases of one server."""

    args: argparse.Namespace
    urls: dict[str, str]
    services: dict[str, ServerProcess]
    postmaster: int | None
    figures: dict[str, Any] = field(default_factory=dict)

    def meter(self, name: str) -> CpuMeter:
        return CpuMeter({name: [self.services[name].pid], "client": [os.getpid()]}, self.postmaster)

    async def sql(self, name: str, query: str, *params: Any) -> Any:
        conn = await asyncpg.connect(self.urls[name])
        try:
            return await conn.fetchval(query, *params)
        finally:
            await conn.close()

    async def checkpoint(self) -> None:
        with suppress(asyncpg.PostgresError):
            await self.sql("on", "CHECKPOINT")

    async def import_only(self, name: str) -> None:
        """Import every segment into one service (for --verify-only)."""
        count = math.ceil(self.args.scale / self.args.segment)
        segments = import_files(self.args.out / "work", self.args.seed, self.args.scale, count)
        for index, segment in enumerate(segments):
            service = self.services[name]
            answer = await upload(HOST, service.port, "/v1/events", segment.path, NDJSON)
            if answer.status != 201:  # 201: events stored anew
                raise RuntimeError(f"import failed: {answer.status} {answer.body[:500]!r}")
            sys.stderr.write(f"segment {index + 1}/{count} imported into {name}\n")

    # --- 1. ingest (and 2. state at the small size on the way) ---

    async def ingest(self) -> None:
        """Import every segment into both services; run the state queries at ``--small``."""
        count = math.ceil(self.args.scale / self.args.segment)
        segments = import_files(self.args.out / "work", self.args.seed, self.args.scale, count)
        runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
        done = 0
        for index, segment in enumerate(segments):
            order = ("off", "on") if index % 2 == 0 else ("on", "off")
            for name in order:
                await self.checkpoint()
                with self.meter(name) as meter:
                    started = time.perf_counter()
                    service = self.services[name]
                    answer = await upload(HOST, service.port, "/v1/events", segment.path, NDJSON)
                    seconds = time.perf_counter() - started
                summary = json.loads(answer.body)
                if answer.status != 201 or summary.get("accepted") != segment.events:
                    raise RuntimeError(f"import failed: {answer.status} {answer.body[:500]!r}")
                runs[name].append(
                    {"events": segment.events, "seconds": round(seconds, 3), "cpu": meter.seconds}
                )
                rate = segment.events / seconds
                sys.stderr.write(f"segment {index + 1}/{count} projections {name}: {rate:,.0f}/s\n")
            done += segment.events
            if done == self.args.small:
                await self.state("state_small", done)
        rates = {
            name: sum(r["events"] for r in rs) / sum(r["seconds"] for r in rs)
            for name, rs in runs.items()
        }
        self.figures["ingest"] = {
            "on": runs["on"],
            "off": runs["off"],
            "events_per_s": {k: round(v) for k, v in rates.items()},
            "ratio": round(rates["on"] / rates["off"], 3),
            "ratio_per_segment": [
                round(off["seconds"] / on["seconds"], 3)
                for on, off in zip(runs["on"], runs["off"], strict=True)
            ],
            "memory_high_water_mib": {
                name: _high_water_mib(service.pid) for name, service in self.services.items()
            },
        }

    # --- 2. state ---

    async def state(self, key: str, events: int) -> None:
        """Random boxes, random valid times and known positions: a box holding about
        BOX_PLACES located places, and a box sized so that answers hold about BOX_PLACES."""
        rng = random.Random(self.args.seed * 7919 + events)
        points = [
            (p.lon, p.lat)
            for p in Workload(seed=self.args.seed, stream=0)._places
            if p.lon is not None and p.lat is not None
        ]
        bounds = (
            min(x for x, _ in points),
            min(y for _, y in points),
            max(x for x, _ in points),
            max(y for _, y in points),
        )
        area = (bounds[2] - bounds[0]) * (bounds[3] - bounds[1])
        side = math.sqrt(area * BOX_PLACES / len(points))
        head = int(await self.sql("on", "SELECT position FROM log_head WHERE id = 1"))
        last_day = FIRST_DAY + timedelta(days=DAYS * events // self.args.scale)
        probe = _StateProbe(self, rng, points, bounds, head, last_day)
        fixed = await probe.run(side, self.args.queries)
        # Answer-sized: widen the box until answers hold about BOX_PLACES places on average.
        sized = side
        for _ in range(3):
            trial = await probe.run(sized, 40)
            ratio = BOX_PLACES / max(trial["answer_places_mean"], 1)
            sized = min(sized * math.sqrt(ratio), bounds[2] - bounds[0], bounds[3] - bounds[1])
        answers = await probe.run(sized, self.args.queries)
        self.figures[key] = {"events": events, "fixed_box": fixed, "answer_sized_box": answers}
        sys.stderr.write(f"state at {events} events: {self.figures[key]}\n")

    # --- 5. live delivery lag ---

    async def live(self) -> None:
        """Commit-to-client lag of GET /v1/events/stream: SUBSCRIBERS SSE clients while
        single POSTs arrive at LIVE_RATE events/s (lag: arrival time minus recorded_at, which
        is read under the head lock as the commit starts; both clocks are this machine's)."""
        head = int(await self.sql("on", "SELECT position FROM log_head WHERE id = 1"))
        count = int(LIVE_RATE * self.args.live_seconds)
        bodies = post_bodies(self.args.seed, 200, count, self.args.scale)
        port = self.services["on"].port
        lags: list[float] = []
        ready = 0

        async def subscriber() -> int:
            nonlocal ready
            reader, writer = await asyncio.open_connection(HOST, port, limit=2**20)
            writer.write(
                f"GET /v1/events/stream?after={head} HTTP/1.1\r\nHost: {HOST}\r\n"
                f"{client.AUTH}\r\n".encode()
            )
            await reader.readuntil(b"\r\n\r\n")
            ready += 1
            seen, buffer = 0, b""
            try:
                while seen < count:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    buffer += await reader.readexactly(size)
                    await reader.readexactly(2)
                    now = datetime.now(UTC)
                    *messages, buffer = buffer.split(b"\n\n")
                    for message in messages:
                        if message.startswith(b":"):
                            continue
                        data = message.rsplit(b"data: ", 1)[1]
                        recorded = datetime.fromisoformat(
                            msgspec.json.decode(data)["recorded_at"].replace("Z", "+00:00")
                        )
                        lags.append((now - recorded).total_seconds())
                        seen += 1
            finally:
                writer.close()
            return seen

        tasks = [asyncio.create_task(subscriber()) for _ in range(SUBSCRIBERS)]
        while ready < SUBSCRIBERS:  # noqa: ASYNC110 (a bench: polling a counter is enough)
            await asyncio.sleep(0.05)
        load = await post_load(HOST, port, "/v1/events", bodies, 16, rate=LIVE_RATE)
        delivered = await asyncio.wait_for(asyncio.gather(*tasks), 120)
        lags.sort()
        self.figures["live"] = {
            "subscribers": SUBSCRIBERS,
            "events": count,
            "offered_rate": LIVE_RATE,
            "achieved_rate": round(load.rate),
            "delivered_each": delivered,
            "lag_p50_ms": round(_quantile(lags, 0.5) * 1000, 1),
            "lag_p99_ms": round(_quantile(lags, 0.99) * 1000, 1),
            "post_p99_ms": round(load.percentile(0.99) * 1000, 1),
        }
        sys.stderr.write(f"live: {self.figures['live']}\n")

    # --- 4. verify ---

    async def verify(self, target: str = "on") -> None:
        """``GET /v1/audit/verify`` against a cursor read of the same rows hashed with hashlib."""
        events = int(await self.sql(target, "SELECT count(*) FROM events"))
        port = self.services[target].port

        async def service() -> None:
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                writer.write(
                    f"GET /v1/audit/verify?projections=off HTTP/1.1\r\nHost: {HOST}\r\n"
                    f"{client.AUTH}"
                    "Connection: close\r\n\r\n".encode()
                )
                answer = await read_response(reader)
            finally:
                writer.close()
            report = msgspec.json.decode(answer.body)
            if answer.status != 200 or not report["ok"] or report["checked"] != events:
                raise RuntimeError(f"verify: {answer.status} {answer.body[:500]!r}")

        async def baseline() -> None:
            await self._cursor_hash(target)

        self.figures["verify"] = await self._rounds("verify", events, service, baseline)

    async def _rounds(
        self,
        name: str,
        events: int,
        service: Callable[[], Awaitable[None]],
        baseline: Callable[[], Awaitable[None]],
    ) -> dict[str, Any]:
        """``--rounds`` rounds of the service and its baseline, alternating who goes first;
        events/s of each side's best round, and their ratio."""
        seconds: dict[str, list[float]] = {"service": [], "baseline": []}
        runs = {"service": service, "baseline": baseline}
        for round_ in range(self.args.rounds):
            for side in ("service", "baseline") if round_ % 2 == 0 else ("baseline", "service"):
                await self.checkpoint()
                started = time.perf_counter()
                await runs[side]()
                took = time.perf_counter() - started
                seconds[side].append(took)
                sys.stderr.write(f"{name} round {round_ + 1} {side}: {took:.1f}s\n")
        best_service = events / min(seconds["service"])
        best_baseline = events / min(seconds["baseline"])
        return {
            "events": events,
            "service_seconds": [round(s, 2) for s in seconds["service"]],
            "baseline_seconds": [round(s, 2) for s in seconds["baseline"]],
            "service_events_per_s": round(best_service),
            "baseline_events_per_s": round(best_baseline),
            "ratio": round(best_service / best_baseline, 3),
        }

    async def _cursor_hash(self, target: str) -> None:
        sha256 = hashlib.sha256
        conn = await asyncpg.connect(self.urls[target])
        last = bytes(32)
        try:
            async with conn.transaction(readonly=True):
                query = STORE_SQL.read_log_for_verify
                async for row in conn.cursor(query, 1, 2**62, prefetch=5000):
                    sha256(row["payload"].encode()).digest()
                    last = sha256(last + row["record"].encode()).digest()
        finally:
            await conn.close()

    # --- 3. rebuild ---

    async def rebuild(self) -> None:
        """``POST /v1/admin/rebuild`` against a cursor read of the same rows folded into a dict."""
        events = int(await self.sql("on", "SELECT count(*) FROM events"))

        async def baseline() -> None:
            assert await self._cursor_fold() > 0

        self.figures["rebuild"] = await self._rounds(
            "rebuild", events, self._rebuild_service, baseline
        )

    async def _rebuild_service(self) -> None:
        port = self.services["on"].port
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(
                f"POST /v1/admin/rebuild HTTP/1.1\r\nHost: {HOST}\r\n{client.AUTH}"
                "Content-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            answer = await read_response(reader)
        finally:
            writer.close()
        if answer.status != 200:
            raise RuntimeError(f"rebuild: {answer.status} {answer.body[:500]!r}")

    async def _cursor_fold(self) -> int:
        decode = msgspec.json.decode
        latest: dict[str, tuple[Any, Any]] = {}
        conn = await asyncpg.connect(self.urls["on"])
        try:
            async with conn.transaction(readonly=True):
                async for row in conn.cursor(PROJECTION_SQL.read_log_for_rebuild, prefetch=5000):
                    event = decode(row["payload"])
                    latest[row["place_id"]] = (event["type"], event.get("side"))
        finally:
            await conn.close()
        return len(latest)


@dataclass
class _StateProbe:
    """Runs GET /v1/state for random boxes of one size on one keep-alive connection."""

    bench: Bench
    rng: random.Random
    points: list[tuple[float, float]]
    bounds: tuple[float, float, float, float]
    head: int
    last_day: date

    async def run(self, side: float, queries: int) -> dict[str, Any]:
        rng, (west, south, east, north) = self.rng, self.bounds
        port = self.bench.services["on"].port
        reader, writer = await asyncio.open_connection(HOST, port)
        latencies: list[float] = []
        sizes: list[int] = []
        inside: list[int] = []
        try:
            for _ in range(queries):
                x = rng.uniform(west, max(west, east - side))
                y = rng.uniform(south, max(south, north - side))
                box = (x, y, x + side, y + side)
                inside.append(
                    sum(x <= px <= box[2] and y <= py <= box[3] for px, py in self.points)
                )
                days = (self.last_day - FIRST_DAY).days + 1
                day = FIRST_DAY + timedelta(days=rng.randrange(days))
                known = rng.randint(1, self.head)
                target = (
                    f"/v1/state?bbox={box[0]:.4f},{box[1]:.4f},{box[2]:.4f},{box[3]:.4f}"
                    f"&valid_at={day.isoformat()}&known_at=position:{known}&limit=1000"
                )
                started = time.perf_counter()
                writer.write(f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\n{client.AUTH}\r\n".encode())
                answer = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                if answer.status != 200:
                    raise RuntimeError(f"GET {target}: {answer.status} {answer.body[:500]!r}")
                sizes.append(len(msgspec.json.decode(answer.body)["items"]))
        finally:
            writer.close()
        latencies.sort()
        return {
            "queries": len(latencies),
            "box_degrees": round(side, 3),
            "places_in_box_mean": round(sum(inside) / len(inside)),
            "answer_places_mean": round(sum(sizes) / len(sizes)),
            "answer_places_p99": sorted(sizes)[min(len(sizes) - 1, int(0.99 * len(sizes)))],
            "p50_ms": round(_quantile(latencies, 0.5) * 1000, 2),
            "p99_ms": round(_quantile(latencies, 0.99) * 1000, 2),
        }


def _high_water_mib(pid: int) -> float | None:
    """The process's peak resident memory so far, in MiB; None off Linux."""
    try:
        return round(memory_mib(pid)["VmHWM"], 1)
    except OSError:
        return None


def _quantile(ordered: Sequence[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def table(figures: dict[str, Any]) -> str:
    """The markdown table of the goals."""
    ingest, rebuild, verify = figures["ingest"], figures["rebuild"], figures["verify"]
    small, large = figures["state_small"], figures["state_large"]
    rows: list[tuple[str, Any, Any, float, str, bool]] = [
        ("NDJSON import, events/s", ingest["events_per_s"]["on"], ingest["events_per_s"]["off"],
         ingest["ratio"], f">= {GOALS['ingest']}", ingest["ratio"] >= GOALS["ingest"]),
    ]  # fmt: skip
    for box in ("fixed_box", "answer_sized_box"):
        ratio = round(large[box]["p99_ms"] / small[box]["p99_ms"], 3)
        rows.append(
            (
                f"GET /v1/state p99 ms, {box.replace('_', ' ')} ({large['events']:,} vs "
                f"{small['events']:,} events)",
                large[box]["p99_ms"],
                small[box]["p99_ms"],
                ratio,
                f"<= {GOALS['state_p99']}",
                ratio <= GOALS["state_p99"],
            )
        )
    rows += [
        ("full rebuild, events/s", rebuild["service_events_per_s"],
         rebuild["baseline_events_per_s"], rebuild["ratio"], f">= {GOALS['rebuild']}",
         rebuild["ratio"] >= GOALS["rebuild"]),
        ("verify, events/s", verify["service_events_per_s"], verify["baseline_events_per_s"],
         verify["ratio"], f">= {GOALS['verify']}", verify["ratio"] >= GOALS["verify"]),
    ]  # fmt: skip
    lines = [
        "| benchmark | service | baseline | ratio | goal | met |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    lines += [f"| {n} | {s:,} | {b:,} | **{r}** | {g} | {'yes' if m else 'no'} |"
              for n, s, b, r, g, m in rows]  # fmt: skip
    per_segment = ingest["ratio_per_segment"]
    tenth = round(per_segment[-1] / per_segment[0], 3)
    lines.append(
        f"\ningest ratio per segment: {per_segment}; last / first {tenth} (goal >= 0.8); "
        f"memory high-water after the import, MiB: {ingest.get('memory_high_water_mib')}"
    )
    live = figures["live"]
    lines.append(
        f"\nlive: {live['subscribers']} subscribers, {live['events']} POSTs offered at "
        f"{live['offered_rate']:.0f}/s (achieved {live['achieved_rate']}/s): lag p50 "
        f"{live['lag_p50_ms']} ms, p99 {live['lag_p99_ms']} ms; POST p99 {live['post_p99_ms']} ms"
    )
    for name, figure in (("small", small), ("large", large)):
        for box in ("fixed_box", "answer_sized_box"):
            f = figure[box]
            lines.append(
                f"\n{name} log ({figure['events']:,} events), {box.replace('_', ' ')} of "
                f"{f['box_degrees']} degrees: {f['places_in_box_mean']} places in the box, "
                f"{f['answer_places_mean']} in an answer on average (p99 "
                f"{f['answer_places_p99']}); p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three benchmarks; write bench/out/front-*.json; print the table."""
    args = parser().parse_args(argv)
    if args.scale % args.segment or args.small % args.segment or args.small > args.scale:
        parser().error("--scale and --small must be multiples of --segment, small <= scale")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    external = os.environ.get("DATABASE_URL") or None
    embedded: EmbeddedPostgres | None = None
    if external is None:
        folder = args.data_dir or Path(tempfile.mkdtemp(prefix="frontline-front-pg-"))
        embedded = EmbeddedPostgres(folder, remove=args.data_dir is None)
    services: dict[str, ServerProcess] = {}
    started = time.perf_counter()
    try:
        server_url = embedded.start() if embedded is not None else str(external)
        urls = {k: asyncio.run(recreate_database(server_url, db)) for k, db in DATABASES.items()}
        key = new_key()
        client.AUTH = f"Authorization: Bearer {key}\r\n"
        for name, url in urls.items():
            env = {"DATABASE_URL": url, "FRONTLINE_LOG_FORMAT": "json", "FRONTLINE_RATE_LIMIT": "0"}
            run_checked([str(VENV_BIN / "frontline"), "migrate"], env, work / f"migrate-{name}.log")
            asyncio.run(grant_key(url, key))
            if name == "off":
                env["FRONTLINE_PROJECTIONS"] = "off"
            port = free_port()
            services[name] = ServerProcess(
                name=name,
                command=[str(VENV_BIN / "frontline"), "serve", "--port", str(port)],
                env=env,
                log_path=work / f"front-{name}-{stamp}.log",
                port=port,
                ready_path="/ready",
            )
            services[name].start()
        bench = Bench(args, urls, services, embedded.postmaster_pid() if embedded else None)

        async def everything() -> None:
            if args.verify_only:
                await bench.import_only("off")
                await bench.verify("off")
                return
            await bench.ingest()
            await bench.state("state_large", args.scale)
            await bench.verify()
            await bench.live()
            await bench.rebuild()

        asyncio.run(everything())
        figures = bench.figures
        figures["total_seconds"] = round(time.perf_counter() - started, 1)
        payload = {
            "machine": machine_info("", external is not None),
            "source": source_revision(),
            "command": shlex.join([sys.executable, "-m", "bench.front", *(argv or sys.argv[1:])]),
            "figures": figures,
        }
        out = args.out / f"front-{stamp}.json"
        out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        (args.out / "front-latest.json").write_text(out.read_text())
        summary = json.dumps(figures["verify"]) if args.verify_only else table(figures)
        sys.stdout.write(summary + f"\n\nresults: {out}\n")
        return 0
    finally:
        for service in services.values():
            service.stop()
        if external is not None:
            for db in DATABASES.values():
                with suppress(Exception):
                    asyncio.run(drop_database(external, db))
        if embedded is not None and embedded.url:
            embedded.stop()


if __name__ == "__main__":
    raise SystemExit(main())
