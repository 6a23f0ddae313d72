"""Crash of the service: SIGKILL at random moments while 4 writers post, then restart.

Each writer posts single events with ids it chose, one at a time. An event is *acknowledged*
when its 2xx answer arrived, *unacknowledged* when the connection broke first. After each
kill the service restarts and every unacknowledged event is posted again, same id and body.
At the end the log must hold every acknowledged event exactly once, every retried one
exactly once, nothing twice, and its hash chain must verify.

    python -m reliability.crash_service --rounds 20      # embedded PostgreSQL in a temp folder
    DATABASE_URL=postgresql://... python -m reliability.crash_service   # a given server

This proves durability across *process* crashes of the service (the database keeps what it
acknowledged); it says nothing about power loss.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg
import httpx

from bench.servers import FRONTLINE, ServerProcess, check_database, free_port
from service.store.audit import AuditReader
from service.store.keys import KeyStore

HOST: Final = "127.0.0.1"
WRITERS: Final = 4


@dataclass
class Report:
    """What the rounds did and what the log holds afterwards."""

    rounds: int = 0
    acknowledged: set[str] = field(default_factory=set)
    unacknowledged: set[str] = field(default_factory=set)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Every body posted, by id: a retry sends the very same one."""
    retried_stored: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    chain_ok: bool = False

    def lines(self) -> list[str]:
        return [
            f"rounds (SIGKILL of the service): {self.rounds}",
            f"acknowledged events lost: {self.lost} of {len(self.acknowledged)}",
            f"unacknowledged events: {len(self.unacknowledged)}, stored once after a retry "
            f"with the same id: {self.retried_stored}",
            f"events stored twice: {self.duplicated}",
            f"events in the log: {self.stored}",
            f"hash chain verifies: {'yes' if self.chain_ok else 'NO'}",
        ]


def event_body(event_id: str, n: int) -> dict[str, Any]:
    """The wire body of writer event ``n`` with the id ``event_id`` (shared by the crash checks)."""
    return {
        "id": event_id,
        "type": "control",
        "place": {"id": f"sy-crash-{n % 7}", "name": f"Crash {n % 7}"},
        "occurred": {"start": f"2017-06-{1 + n % 28:02d}", "precision": "day"},
        "source": {"name": f"Writer {n % WRITERS}", "reliability": "C"},
        "side": "isis",
    }


def start_service(url: str, work: Path) -> ServerProcess:
    """``frontline serve`` on ``url``, started and answering ``/ready``."""
    port = free_port()
    service = ServerProcess(
        name="service",
        command=[*FRONTLINE, "serve", "--port", str(port)],
        env={"DATABASE_URL": url, "FRONTLINE_LOG_FORMAT": "json"},
        log_path=work / "service.log",
        port=port,
        ready_path="/ready",
    )
    service.start()
    return service


def _kill(service: ServerProcess) -> None:
    """SIGKILL: no shutdown, whatever it was doing."""
    assert service.process is not None
    service.process.send_signal(signal.SIGKILL)
    service.process.wait()
    service.stop()  # closes its log


async def _writer(base: str, key: str, start: int, report: Report, stop: asyncio.Event) -> None:
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
        n = start
        while not stop.is_set():
            event_id = str(uuid.uuid4())
            report.bodies[event_id] = event_body(event_id, n)
            try:
                response = await client.post("/v1/events", json=report.bodies[event_id])
            except httpx.HTTPError:
                report.unacknowledged.add(event_id)
                return
            if response.status_code in (200, 201):
                report.acknowledged.add(event_id)
            else:
                report.unacknowledged.add(event_id)
                return
            n += WRITERS


async def _round(url: str, key: str, work: Path, rng: random.Random, report: Report) -> None:
    service = start_service(url, work)
    stop = asyncio.Event()
    base = f"http://{HOST}:{service.port}"
    tasks = [
        asyncio.create_task(_writer(base, key, w + report.rounds * 100_000, report, stop))
        for w in range(WRITERS)
    ]
    await asyncio.sleep(rng.uniform(0.2, 1.5))
    _kill(service)
    stop.set()
    await asyncio.gather(*tasks)
    report.rounds += 1


async def _retry_unacknowledged(url: str, key: str, work: Path, report: Report) -> None:
    service = start_service(url, work)
    try:
        base = f"http://{HOST}:{service.port}"
        headers = {"authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
            for event_id in sorted(report.unacknowledged):
                # The same id and body: a 201 stores it now, a 200 says the killed service had
                # stored it before it died. Either way it is stored once.
                response = await client.post("/v1/events", json=report.bodies[event_id])
                if response.status_code not in (200, 201):
                    raise RuntimeError(f"retry of {event_id}: {response.status_code}")
                report.retried_stored += 1
    finally:
        _kill(service)


async def run(url: str, rounds: int, work: Path, seed: int = 1) -> Report:
    """Kill the service ``rounds`` times while it writes; retry; count what the log holds."""
    rng = random.Random(seed)  # noqa: S311 (when to kill, not a secret)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        _, key = await KeyStore(pool).create(f"crash-{uuid.uuid4().hex[:8]}", "ingest")
    finally:
        await pool.close()
    report = Report()
    for _ in range(rounds):
        await _round(url, key, work, rng, report)
    await _retry_unacknowledged(url, key, work, report)
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id::text AS id, count(*) AS n FROM events GROUP BY id")
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            report.chain_ok = (await AuditReader(pool, None).verify(None, None)).ok
        finally:
            await pool.close()
    finally:
        await conn.close()
    counts = {r["id"]: r["n"] for r in rows}
    report.stored = len(counts)
    report.lost = sum(1 for i in report.acknowledged if counts.get(i, 0) != 1)
    report.duplicated = sum(1 for n in counts.values() if n > 1)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; print the report; exit 1 when anything was lost or doubled."""
    parser = argparse.ArgumentParser(prog="python -m reliability.crash_service")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with check_database("frontline-crash-") as (url, folder):
        report = asyncio.run(run(url, args.rounds, folder, args.seed))
    sys.stdout.write("\n".join(report.lines()) + "\n")
    sys.stdout.write(json.dumps({"lost": report.lost, "duplicated": report.duplicated}) + "\n")
    return 0 if report.lost == 0 and report.duplicated == 0 and report.chain_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
