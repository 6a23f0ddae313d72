"""What one append commit costs PostgreSQL, measured on its one backend.

The store appends through a pool of one connection, with the projections on, so the CPU
time of that connection's backend (read from ``/proc``, on this machine) is what the
commits cost the database: the head lock, the look-ups, the log's writes and the
projection's. ``--events`` per commit, ``--commits`` timed after 20 untimed ones, on 200
places with random days, so commits close and insert segments. Run it from two checkouts
(each with its own venv) to compare their write paths on the same server:

    .venv/bin/python -m bench.commit_cost --events 30 --commits 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import msgspec

from contracts.events import event_decoder
from service.domain.append import AppendRequest
from service.domain.records import prepare_event
from service.projections.timelines import TimelineProjector
from service.settings import Settings
from service.store import migrate
from service.store.db import create_pool, start_embedded, stop_embedded
from service.store.events import EventStore

WARMUP = 20


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _commit(rng: random.Random, events: int) -> list[AppendRequest]:
    requests = []
    for _ in range(events):
        side = rng.choice(["isis", "syrian-government"])
        event = {
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "type": rng.choice(["capture", "control", "clash"]),
            "place": {"id": f"sy-p{rng.randrange(200)}", "name": "P", "kind": "town"},
            "side": side,
            "occurred": {"start": f"2017-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"},
            "source": {"name": rng.choice(["Reuters", "SANA", "Amaq"]), "reliability": "C"},
        }
        prepared = prepare_event(event_decoder.decode(msgspec.json.encode(event)))
        requests.append(AppendRequest(events=(prepared,)))
    return requests


async def measure(url: str, events: int, commits: int) -> dict[str, float]:
    """Append ``commits`` commits of ``events`` events; PostgreSQL CPU and wall time each."""
    settings = Settings(database_url=url, migrate_database_url=url, pool_min=1, pool_max=1)
    pool = await create_pool(settings)
    try:
        pid = await pool.fetchval("SELECT pg_backend_pid()")
        store = EventStore(pool, TimelineProjector())
        rng = random.Random(1)
        work = [_commit(rng, events) for _ in range(WARMUP + commits)]
        for requests in work[:WARMUP]:
            await store.append_group(requests)
        cpu, wall = _cpu_seconds(pid), time.perf_counter()
        for requests in work[WARMUP:]:
            await store.append_group(requests)
        cpu, wall = _cpu_seconds(pid) - cpu, time.perf_counter() - wall
    finally:
        await pool.close()
    return {
        "postgres_ms_per_commit": 1000 * cpu / commits,
        "wall_ms_per_commit": 1000 * wall / commits,
    }


async def _database(server: str) -> str:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute("DROP DATABASE IF EXISTS frontline_commit_cost WITH (FORCE)")
        await conn.execute("CREATE DATABASE frontline_commit_cost")
    finally:
        await conn.close()
    return server.replace("/postgres?", "/frontline_commit_cost?", 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30, help="events per commit")
    parser.add_argument("--commits", type=int, default=300, help="commits timed")
    parser.add_argument(
        "--rounds", type=int, default=2, help="measurements, each on a new database"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="frontline-commit-cost-") as folder:
        server = start_embedded(Path(folder))
        try:
            for _ in range(args.rounds):
                url = asyncio.run(_database(server))
                migrate.upgrade(url)
                result = asyncio.run(measure(url, args.events, args.commits))
                print(
                    f"{args.events} events a commit, {args.commits} commits: PostgreSQL "
                    f"{result['postgres_ms_per_commit']:.2f} ms a commit, wall "
                    f"{result['wall_ms_per_commit']:.2f} ms",
                    flush=True,
                )
        finally:
            stop_embedded(Path(folder))


if __name__ == "__main__":
    main()
