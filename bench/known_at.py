"""What resolving ``known_at`` costs: the one combined query against two simple ones.

``FrontReader.resolve`` answers what ``known_at`` names in one read
(``resolve_known_at.sql``: the commit position, the chain hash when the log is asked for, the
projections' policy and reach). The alternative measured here reads the projection's state
and then the position (and, for an export, the head and the hash) in separate queries, the
way it was done before. On a log of ``--events`` events (``bench.workload``, POSTed through
the real app), each round times both, alternating who goes first:

* ``GET /v1/state?limit=200&known_at=position:N`` through the app (in process, the real
  routes and pool), N random;
* ``resolve`` alone with ``known_at=position:N``, and as an export of the latest log calls it.

    .venv/bin/python -m bench.known_at --events 5000 --rounds 12
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import asyncpg
from litestar.testing import AsyncTestClient

from bench.workload import Workload
from service.app import create_app
from service.projections.reads import FrontReader, Resolved, RowsAt
from service.projections.timelines import projection_state
from service.query import KnownAt
from service.settings import Settings
from service.store import migrate
from service.store.db import start_embedded, stop_embedded
from service.store.keys import KeyStore
from service.store.queries import SQL as STORE_SQL

POSITION: Final = """SELECT coalesce(max(commit_position), 0) FROM (
  SELECT commit_position FROM events WHERE position <= $1 AND commit_position <= $1
  ORDER BY position DESC LIMIT 1) AS last"""
TIME: Final = """SELECT coalesce(max(commit_position), 0) FROM (
  SELECT commit_position FROM events WHERE recorded_at <= $1
  ORDER BY recorded_at DESC, position DESC LIMIT 1) AS last"""
HASH: Final = """SELECT coalesce((SELECT hash FROM events WHERE position = $1),
  decode(repeat('00', 32), 'hex'))"""

Resolve = Callable[[FrontReader, KnownAt, bool], Awaitable[Resolved]]
SERVICE_RESOLVE: Final = FrontReader.resolve


async def combined(reader: FrontReader, known: KnownAt, log: bool) -> Resolved:
    """The service's own: one query."""
    return await SERVICE_RESOLVE(reader, known, log=log)


async def separate(reader: FrontReader, known: KnownAt, log: bool) -> Resolved:
    """The alternative: the projection's state, then the position (and the hash)."""
    state = await projection_state(reader.pool)
    if known.position is not None:
        position: int = await reader.pool.fetchval(POSITION, known.position)
    elif known.time is not None:
        position = await reader.pool.fetchval(TIME, known.time)
    elif log:
        position = (await reader.pool.fetchrow(STORE_SQL.read_head))["position"]  # type: ignore[index]
    else:
        position = state.position
    chain_hash = bytes(await reader.pool.fetchval(HASH, position)) if log else None
    rows = RowsAt(min(position, state.position), state.policy, state.policy_version)
    return Resolved(position, chain_hash, rows)


VARIANTS: Final[dict[str, Resolve]] = {"combined": combined, "separate": separate}


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(len(ordered) * 0.9)]
    return f"median {statistics.median(ordered) * 1e3:6.2f} ms  p90 {p90 * 1e3:6.2f} ms"


async def run(url: str, events: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    """The log POSTed, then ``rounds`` rounds of each variant, alternating who goes first."""
    settings = Settings(database_url=url, migrate_database_url=url, log_level="WARNING")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    assert pool is not None
    _, key = await KeyStore(pool).create("bench-known-at", "admin")
    app = create_app(settings)
    reader = FrontReader(pool)
    times: dict[str, dict[str, list[float]]] = {
        what: {name: [] for name in VARIANTS} for what in ("http", "resolve", "export")
    }
    rng = random.Random(7)
    load = Workload(places=1000, span=events)
    try:
        async with AsyncTestClient(app=app, timeout=600) as client:
            client.headers["authorization"] = f"Bearer {key}"
            for done in range(0, events, 500):
                body = b"\n".join(load.lines(min(500, events - done))) + b"\n"
                posted = await client.post(
                    "/v1/events", content=body, headers={"content-type": "application/x-ndjson"}
                )
                assert posted.status_code == 201, posted.text
            for turn in range(rounds):
                names = list(VARIANTS) if turn % 2 == 0 else list(reversed(VARIANTS))
                for name in names:
                    variant = VARIANTS[name]

                    async def patched(
                        self: FrontReader,
                        known: KnownAt,
                        *,
                        log: bool = False,
                        variant: Resolve = variant,
                    ) -> Resolved:
                        return await variant(self, known, log)

                    FrontReader.resolve = patched  # type: ignore[method-assign]
                    for _ in range(150):
                        target = f"/v1/state?limit=200&known_at=position:{rng.randint(1, events)}"
                        start = time.perf_counter()
                        answer = await client.get(target)
                        times["http"][name].append(time.perf_counter() - start)
                        assert answer.status_code == 200, answer.text
                    FrontReader.resolve = SERVICE_RESOLVE  # type: ignore[method-assign]
                    for _ in range(500):
                        known = KnownAt(position=rng.randint(1, events))
                        start = time.perf_counter()
                        await variant(reader, known, False)
                        times["resolve"][name].append(time.perf_counter() - start)
                    for _ in range(200):
                        start = time.perf_counter()
                        await variant(reader, KnownAt(), True)
                        times["export"][name].append(time.perf_counter() - start)
    finally:
        FrontReader.resolve = SERVICE_RESOLVE  # type: ignore[method-assign]
        await pool.close()
    return times


async def _database(server: str) -> str:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute("DROP DATABASE IF EXISTS frontline_known_at WITH (FORCE)")
        await conn.execute("CREATE DATABASE frontline_known_at")
    finally:
        await conn.close()
    return server.replace("/postgres?", "/frontline_known_at?", 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="events in the log")
    parser.add_argument("--rounds", type=int, default=12, help="rounds of each variant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="frontline-known-at-") as folder:
        server = start_embedded(Path(folder))
        try:
            url = asyncio.run(_database(server))
            migrate.upgrade(url)
            times = asyncio.run(run(url, args.events, args.rounds))
        finally:
            stop_embedded(Path(folder))
    labels = {
        "http": "GET /v1/state?limit=200&known_at=position:N",
        "resolve": "resolve(known_at=position:N)",
        "export": "resolve(latest, log=True) (an export)",
    }
    for what, label in labels.items():
        print(label)
        for name, samples in times[what].items():
            print(f"  {name:9} {_ms(samples)}  ({len(samples)} samples)")


if __name__ == "__main__":
    main()
