"""Several service processes on one database (``frontline serve --workers N``, or two servers):
the log's invariants, the fold cache, live streams and metrics hold across processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import asyncpg
import httpx
import pytest

from bench.servers import FRONTLINE, ServerProcess, free_port
from service.store.db import EMBEDDED_LOGIN, with_user
from service.store.keys import KeyStore

HOST: Final = "127.0.0.1"
WRITERS: Final = 32
EACH: Final = 12
"""Events each racing writer posts (one request each; every fourth a batch of two)."""
ROWS: Final = (
    "SELECT place_id, valid_from, valid_to, known_from, known_to, controller, status,"
    " status_by, disputed, confidence, basis, body FROM segments"
    " ORDER BY place_id, known_from, valid_from"
)


def service_env(db: str, **extra: str) -> dict[str, str]:
    """The environment of a served instance on ``db``: the service logs in as the embedded
    server's login role (no superuser), as in production; migrations as the owner."""
    external = bool(os.environ.get("DATABASE_URL"))
    return {
        "DATABASE_URL": db if external else with_user(db, EMBEDDED_LOGIN),
        "FRONTLINE_MIGRATE_DATABASE_URL": db,
        "FRONTLINE_LOG_FORMAT": "json",
        **extra,
    }


@contextlib.contextmanager
def served(
    env: Mapping[str, str], log_path: Path, *arguments: str, name: str = "service"
) -> Iterator[ServerProcess]:
    """``frontline serve`` with ``arguments`` on a free port, answering ``/ready``; stopped
    (SIGTERM) at the end."""
    port = free_port()
    server = ServerProcess(
        name=name,
        command=[*FRONTLINE, "serve", "--port", str(port), *arguments],
        env=env,
        log_path=log_path,
        port=port,
        ready_path="/ready",
    )
    server.start(timeout=90)
    try:
        yield server
    finally:
        server.stop()


async def admin_key(db: str) -> str:
    """A fresh admin API key in ``db`` (made as the schema's owner)."""
    pool = await asyncpg.create_pool(db, min_size=1, max_size=2)
    try:
        _, key = await KeyStore(pool).create(f"workers-{uuid.uuid4().hex[:8]}", "admin")
    finally:
        await pool.close()
    return key


@contextlib.asynccontextmanager
async def client(server: ServerProcess, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``server`` sending ``key``."""
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{server.port}",
        headers={"authorization": f"Bearer {key}"},
        timeout=60,
    ) as http:
        yield http


def event(n: int, *, place: str = "", side: str = "isis", day: int = 0) -> dict[str, Any]:
    """A control report with a fresh id: on ``place`` (else one of seven), by ``side``."""
    where = place or f"sy-worker-{n % 7}"
    return {
        "id": str(uuid.uuid4()),
        "type": "control",
        "place": {"id": where, "name": where.title()},
        "occurred": {"start": f"2017-06-{1 + (day or n) % 28:02d}", "precision": "day"},
        "source": {"name": f"Writer {n % 5}", "reliability": "B"},
        "side": side,
    }


def command(env: Mapping[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """A ``frontline`` command (as the operator runs it) with ``env``, to its end."""
    return subprocess.run(  # noqa: S603 (our own venv's command)
        [*FRONTLINE, *arguments],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


async def test_two_workers_keep_positions_dense_under_32_racing_writers(
    fresh_db: str, tmp_path: Path
) -> None:
    """``frontline serve --workers 2`` under 32 racing writers: every acknowledged event is in
    the log once, positions run 1..N without a gap, the chain verifies, both processes
    served, and ``/metrics`` adds up the requests of both."""
    key = await admin_key(fresh_db)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = service_env(fresh_db, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    acknowledged: list[str] = []

    async def writer(http: httpx.AsyncClient, w: int) -> None:
        for i in range(EACH):
            n = w * EACH + i
            batch = [event(n), event(n + 1000)] if i % 4 == 3 else [event(n)]
            body = batch[0] if len(batch) == 1 else {"events": batch}
            response = await http.post("/v1/events", json=body)
            assert response.status_code == 201, response.text
            acknowledged.extend(e["id"] for e in batch)

    with served(env, tmp_path / "service.log", "--workers", "2") as server:
        async with contextlib.AsyncExitStack() as stack:
            # A connection of its own for each writer: the kernel spreads them over the two.
            https = [await stack.enter_async_context(client(server, key)) for _ in range(WRITERS)]
            await asyncio.gather(*(writer(http, w) for w, http in enumerate(https)))
            metrics = (await https[0].get("/metrics")).text
    conn = await asyncpg.connect(fresh_db)
    try:
        rows = await conn.fetch("SELECT position, id::text AS id FROM events ORDER BY position")
        head = await conn.fetchval("SELECT position FROM log_head WHERE id = 1")
    finally:
        await conn.close()
    positions = [r["position"] for r in rows]
    assert positions == list(range(1, len(rows) + 1))
    assert head == len(rows)
    stored = [r["id"] for r in rows]
    assert sorted(stored) == sorted(acknowledged)  # each once, none lost, none more
    assert len(acknowledged) == WRITERS * (EACH + EACH // 4)
    checked = await asyncio.to_thread(command, service_env(fresh_db), "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Both processes counted requests (a file each), and a scrape adds them up.
    pids = {p.name.rsplit("_", 1)[1] for p in metrics_dir.glob("counter_*.db")}
    assert len(pids) >= 2, sorted(p.name for p in metrics_dir.iterdir())
    posted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("frontline_http_requests_total{")
        and 'method="POST"' in line
        and 'status="201"' in line
    )
    assert posted == WRITERS * EACH


async def test_a_place_appended_through_two_processes_projects_as_a_rebuild_does(
    fresh_db: str, tmp_path: Path
) -> None:
    """Appends to one place alternately through two server processes (each with its fold of
    the place cached), out of valid-time order; then a side alias registered through the
    second that remaps a name the place's events use (the place's stream does not move), and
    more appends, the first through the process whose fold is at the stream's version: the
    projected rows equal those a rebuild makes from the log, so no process folded on stale
    state (an older stream version, or an older side registry)."""
    key = await admin_key(fresh_db)
    env = service_env(fresh_db)
    place = "sy-shared"
    # Nine appends: the last goes through the first process, which then holds the place's
    # fold at the stream's version when the second registers the alias.
    days = [10, 3, 15, 7, 20, 1, 12, 5, 8]
    sides = ["isis", "sdf", "islamic-state", "isis", "sdf", "islamic-state", "sdf", "isis", "sdf"]
    with (
        served(env, tmp_path / "a.log", name="a") as first,
        served(env, tmp_path / "b.log", name="b") as second,
    ):
        async with client(first, key) as a, client(second, key) as b:
            for n, (day, side) in enumerate(zip(days, sides, strict=True)):
                through = a if n % 2 == 0 else b
                response = await through.post(
                    "/v1/events", json=event(n, place=place, side=side, day=day)
                )
                assert response.status_code == 201, response.text
            alias = {
                "side": "isis",
                "name": "Islamic State",
                "kind": "non_state_armed_group",
                "colour": "#000000",
                "aliases": ["islamic-state"],
            }
            registered = await b.post("/v1/sides", json=alias)
            assert registered.status_code == 201, registered.text
            for n, (day, side) in enumerate([(9, "islamic-state"), (2, "sdf"), (25, "isis")]):
                through = a if n % 2 == 0 else b
                response = await through.post(
                    "/v1/events", json=event(100 + n, place=place, side=side, day=day)
                )
                assert response.status_code == 201, response.text
    conn = await asyncpg.connect(fresh_db)
    try:
        served_rows = [tuple(r) for r in await conn.fetch(ROWS)]
    finally:
        await conn.close()
    assert served_rows, "the appends projected no row"
    rebuilt = await asyncio.to_thread(command, env, "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    conn = await asyncpg.connect(fresh_db)
    try:
        rebuilt_rows = [tuple(r) for r in await conn.fetch(ROWS)]
    finally:
        await conn.close()
    assert served_rows == rebuilt_rows


async def test_a_live_stream_sees_another_process_commit_at_once(
    fresh_db: str, tmp_path: Path
) -> None:
    """A live stream on one process receives an event appended through another process
    within a few seconds, though its poll is 60 s: the process's database listener wakes it."""
    key = await admin_key(fresh_db)
    env = service_env(fresh_db, FRONTLINE_STREAM_POLL="60", FRONTLINE_STREAM_HEARTBEAT="60")
    with (
        served(env, tmp_path / "a.log", name="a") as first,
        served(env, tmp_path / "b.log", name="b") as second,
    ):
        async with client(first, key) as a, client(second, key) as b:
            posted = event(1)
            async with a.stream(
                "GET", "/v1/events/stream", headers={"accept": "text/event-stream"}
            ) as stream:
                assert stream.status_code == 200
                # The stream has started (its hub read the head) before the append.
                await asyncio.sleep(1.0)
                response = await b.post("/v1/events", json=posted)
                assert response.status_code == 201, response.text
                seen = ""
                async with asyncio.timeout(8):
                    async for chunk in stream.aiter_text():
                        seen += chunk
                        if posted["id"] in seen:
                            break
    assert posted["id"] in seen


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_serve_refuses_a_bad_worker_count(bad: str, tmp_path: Path) -> None:
    """``frontline serve --workers`` below 1 (or not a number) is refused at once with a
    message naming the setting, before anything starts."""
    done = subprocess.run(  # noqa: S603 (our own venv's command)
        [*FRONTLINE, "serve", "--workers", bad, "--data-dir", str(tmp_path / "data")],
        env={**os.environ, "FRONTLINE_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode != 0
    assert "workers" in done.stderr.lower()
    assert not (tmp_path / "data").exists()
