"""``GET /v1/state`` for a box of about 1,000 places: from a streaming replica against the
primary, in the same run, on the same machine (the replica shares its cores).

An embedded primary and a replica made from it with ``pg_basebackup -R`` (``bench.replica``);
``--places`` located places, one capture each, imported into the primary; two ``frontline
serve`` processes on the primary's database: ``primary`` (no ``FRONTLINE_READ_URLS``) and
``replica`` (``FRONTLINE_READ_URLS`` the replica: its reads are the replica's, and each answer
says so in ``Frontline-Served-By``). Each round sends ``--requests`` requests from
``--connections`` keep-alive connections to one service, then the other, alternating who goes
first; the CPU of the service process and of each PostgreSQL (its postmaster's children) is
metered per phase.

    .venv/bin/python -m bench.replica_reads                 # about a minute
    .venv/bin/python -m bench.replica_reads --rounds 6 --requests 400

Results go to ``bench/out/replica-reads-<time>.json``; a markdown table is printed. See
docs/benchmarks.md.
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
from pathlib import Path
from typing import Any, Final

import asyncpg

from bench import client
from bench.client import read_response, upload
from bench.replica import ReplicatedPostgres, on_socket
from bench.servers import FRONTLINE, CpuMeter, ServerProcess, free_port, grant_key, with_database
from service.roles import new_key
from service.store import migrate
from service.store.db import EMBEDDED_LOGIN, ensure_login_role, with_user

HOST: Final = "127.0.0.1"
DATABASE: Final = "frontline_bench_replica"
BOX: Final = (36.0, 35.0, 38.0, 37.0)
"""west, south, east, north: every place is inside it."""
QUERY: Final = "/v1/state?bbox={},{},{},{}&valid_at=2017-07-01&limit=1000".format(*BOX)


def parser() -> argparse.ArgumentParser:
    """The command line."""
    parse = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parse.add_argument("--places", type=int, default=1000)
    parse.add_argument("--rounds", type=int, default=4)
    parse.add_argument("--requests", type=int, default=300, help="per service per round")
    parse.add_argument("--connections", type=int, default=4)
    parse.add_argument("--out", type=Path, default=Path("bench/out"))
    return parse


def events_file(folder: Path, places: int) -> Path:
    """One capture for each of ``places`` places on a grid inside :data:`BOX`, as NDJSON."""
    side = max(1, int(places**0.5))
    west, south, east, north = BOX
    lines = []
    for index in range(places):
        row, column = divmod(index, side)
        lines.append(
            json.dumps(
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-replica-{index}")),
                    "type": "capture",
                    "place": {
                        "id": f"bench-place-{index}",
                        "name": f"Place {index}",
                        "kind": "village",
                        "lat": south + (north - south) * (row + 0.5) / (places / side + 1),
                        "lon": west + (east - west) * (column + 0.5) / (side + 1),
                    },
                    "side": "syrian-government" if index % 3 else "isis",
                    "occurred": {"start": "2017-06-0" + str(1 + index % 9), "precision": "day"},
                    "source": {"name": f"Outlet {index % 17}", "reliability": "C"},
                }
            )
        )
    path = folder / "places.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return path


async def load(port: int, requests: int, connections: int) -> dict[str, Any]:
    """``requests`` GETs of :data:`QUERY` from ``connections`` keep-alive connections."""
    latencies: list[float] = []
    left = iter(range(requests))
    head = f"GET {QUERY} HTTP/1.1\r\nHost: {HOST}\r\n{client.AUTH}\r\n".encode()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(HOST, port, limit=client.CHUNK)
        try:
            for _ in left:
                started = time.perf_counter()
                writer.write(head)
                answer = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                if answer.status != 200:
                    raise RuntimeError(f"GET {QUERY}: {answer.status} {answer.body[:300]!r}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": requests,
        "seconds": round(seconds, 3),
        "per_s": round(requests / seconds, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000, 2),
    }


def _pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


async def served_by(port: int) -> tuple[str, int]:
    """Who answers :data:`QUERY` on this service, and how many places the answer holds."""
    reader, writer = await asyncio.open_connection(HOST, port, limit=client.CHUNK)
    try:
        writer.write(f"GET {QUERY} HTTP/1.1\r\nHost: {HOST}\r\n{client.AUTH}\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        fields = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
        }
        body = await reader.readexactly(int(fields[b"content-length"]))
        node = fields[b"frontline-served-by"].decode()
        return node, len(json.loads(body)["items"])
    finally:
        writer.close()


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The whole benchmark in ``folder``."""
    servers = ReplicatedPostgres(folder / "pg")
    services: dict[str, ServerProcess] = {}
    try:
        servers.start()
        conn = await asyncpg.connect(servers.primary_url)
        await conn.execute(f"CREATE DATABASE {DATABASE}")
        await conn.close()
        owner = with_database(servers.primary_url, DATABASE)
        await asyncio.to_thread(migrate.upgrade, owner)  # alembic runs its own event loop
        await ensure_login_role(servers.primary_url, EMBEDDED_LOGIN, "frontline_app")
        key = new_key()
        await grant_key(owner, key)
        client.AUTH = f"Authorization: Bearer {key}\r\n"
        base = {
            "DATABASE_URL": with_user(owner, EMBEDDED_LOGIN),
            "FRONTLINE_MIGRATE_DATABASE_URL": owner,
            "FRONTLINE_LOG_LEVEL": "warning",
            "FRONTLINE_RATE_LIMIT": "0",
        }
        replica = with_user(on_socket(owner, servers.replica_dir), EMBEDDED_LOGIN)
        for name, extra in (("primary", {}), ("replica", {"FRONTLINE_READ_URLS": replica})):
            port = free_port()
            services[name] = ServerProcess(
                name,
                [*FRONTLINE, "serve", "--port", str(port)],
                {**base, **extra},
                folder / f"{name}.log",
                port,
                "/health",
            )
            services[name].start()
        answer = await upload(
            HOST,
            services["primary"].port,
            "/v1/events",
            events_file(folder, args.places),
            "application/x-ndjson",
        )
        if answer.status not in (200, 201):
            raise RuntimeError(f"import: {answer.status} {answer.body[:300]!r}")
        await asyncio.sleep(1.5)  # the replica replays the import; the router's check sees it
        checks = {name: await served_by(s.port) for name, s in services.items()}
        if checks["replica"][0] != "replica-1" or checks["primary"][0] != "primary":
            raise RuntimeError(f"not served where expected: {checks}")
        postmasters = {
            "primary": _pid(folder / "pg" / "primary" / "pg" / "postmaster.pid"),
            "replica": _pid(servers.replica_dir / "postmaster.pid"),
        }
        rounds: dict[str, list[dict[str, Any]]] = {"primary": [], "replica": []}
        for name in services:  # warm both
            await load(services[name].port, 50, args.connections)
        for index in range(args.rounds):
            order = ("primary", "replica") if index % 2 == 0 else ("replica", "primary")
            for name in order:
                meter = CpuMeter({"service": [services[name].pid], "client": [os.getpid()]})
                pg = {f"pg_{which}": CpuMeter({}, pid) for which, pid in postmasters.items() if pid}
                with meter:
                    for m in pg.values():
                        m.__enter__()
                    figures = await load(services[name].port, args.requests, args.connections)
                    for m in pg.values():
                        m.__exit__()
                cpu = {**meter.seconds, **{k: m.seconds["postgres"] for k, m in pg.items()}}
                figures["cpu_ms_per_request"] = {
                    k: round(v * 1000 / args.requests, 2) for k, v in cpu.items()
                }
                rounds[name].append(figures)
                sys.stderr.write(f"round {index + 1} {name}: {figures}\n")
        summary = {
            name: {
                "per_s_median": round(statistics.median(r["per_s"] for r in runs), 1),
                "p50_ms_median": round(statistics.median(r["p50_ms"] for r in runs), 2),
                "p99_ms_median": round(statistics.median(r["p99_ms"] for r in runs), 2),
                "cpu_ms_per_request_median": {
                    part: round(statistics.median(r["cpu_ms_per_request"][part] for r in runs), 2)
                    for part in runs[0]["cpu_ms_per_request"]
                },
            }
            for name, runs in rounds.items()
        }
        return {
            "places": args.places,
            "answer_places": checks["replica"][1],
            "connections": args.connections,
            "requests_per_round": args.requests,
            "rounds": rounds,
            "summary": summary,
            "ratio_replica_to_primary": round(
                summary["replica"]["per_s_median"] / summary["primary"]["per_s_median"], 3
            ),
            "load_average_at_start": os.getloadavg()[0],
        }
    finally:
        for service in services.values():
            service.stop()
        servers.close()


def table(figures: dict[str, Any]) -> str:
    """The summary as markdown."""
    rows = [
        "| served from | requests/s | p50 ms | p99 ms | CPU ms per request: service, "
        "primary's PostgreSQL, replica's PostgreSQL |",
        "|---|---|---|---|---|",
    ]
    for name, got in figures["summary"].items():
        cpu = got["cpu_ms_per_request_median"]
        rows.append(
            f"| {name} | {got['per_s_median']} | {got['p50_ms_median']} | "
            f"{got['p99_ms_median']} | {cpu['service']}, {cpu.get('pg_primary')}, "
            f"{cpu.get('pg_replica')} |"
        )
    rounds = len(figures["rounds"]["primary"])
    rows.append(
        f"\n{figures['answer_places']} places per answer; medians of {rounds} rounds; "
        f"replica / primary: {figures['ratio_replica_to_primary']}"
    )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Run it, write the JSON, print the table."""
    args = parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="frontline-bench-replica-") as scratch:
        Path(scratch).chmod(0o755)  # PostgreSQL's own user (run as root: pgserver) reaches in
        figures = asyncio.run(run(args, Path(scratch)))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"replica-reads-{stamp}.json").write_text(json.dumps(figures, indent=2))
    print(table(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
