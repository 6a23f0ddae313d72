"""While PostgreSQL is down the service answers 503 problems, never a 500, and once it is
back the same app serves again without a restart (its pool reconnects by itself).

A regression test: a key not in the access check's cache was looked up in the database
before routing, outside the app's error handlers, so the driver's error became a bare 500;
and a read meeting a dead connection answered the 500 "internal" problem.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from reliability.crash_postgres import DATABASE, Postgres, find_postgres
from service.app import create_app
from service.settings import Settings
from service.store import migrate
from service.store.db import create_owner_pool, start_embedded, stop_embedded
from service.store.keys import KeyStore
from tests.api.conftest import assert_problem
from tests.conftest import with_database


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL of the test's own (it is crashed), its database migrated."""
    folder = Path(tempfile.mkdtemp(prefix="frontline-pgdown-test-"))
    pg = Postgres(find_postgres(), folder)
    try:
        pg.init()
        pg.start()
        asyncio.run(_create_database(pg))
        migrate.upgrade(pg.url())
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def _create_database(pg: Postgres) -> None:
    conn = await asyncpg.connect(pg.url("postgres"))
    try:
        await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()


def _event(name: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": "control",
        "place": {"id": f"sy-down-{name}", "name": f"Down {name}"},
        "occurred": {"start": "2017-06-04", "precision": "day"},
        "source": {"name": "Writer", "reliability": "C"},
        "side": "isis",
    }


async def _ready(client: AsyncTestClient[Litestar]) -> None:
    """/ready comes back by itself within 30 s."""
    for _ in range(300):
        if (await client.get("/ready")).status_code == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("/ready did not come back in 30 s")


async def test_503_while_postgres_is_down_and_writes_again_after(postgres: Postgres) -> None:
    """Down: /ready, an append (cached key and unknown-to-the-cache key) and a read each
    answer a 503 problem. Back up: /ready says 200 and appends succeed, the event refused
    meanwhile included (it was not stored)."""
    url = postgres.url()
    settings = Settings(database_url=url, migrate_database_url=url, log_format="json")
    pool = await create_owner_pool(settings)
    try:
        _, used = await KeyStore(pool).create("used", "admin")
        _, fresh = await KeyStore(pool).create("fresh", "admin")
    finally:
        await pool.close()
    used_key = {"authorization": f"Bearer {used}"}
    fresh_key = {"authorization": f"Bearer {fresh}"}
    async with AsyncTestClient(app=create_app(settings)) as client:
        first = await client.post("/v1/events", json=_event("a"), headers=used_key)
        assert first.status_code == 201, first.text

        await asyncio.to_thread(postgres.crash)
        refused = _event("b")
        assert_problem(await client.get("/ready"), 503)
        assert_problem(await client.post("/v1/events", json=refused, headers=used_key), 503)
        assert_problem(await client.post("/v1/events", json=refused, headers=fresh_key), 503)
        assert_problem(await client.get("/v1/events", headers=used_key), 503)
        assert_problem(await client.get("/v1/state", headers=used_key), 503)

        await asyncio.to_thread(postgres.start)
        await _ready(client)
        again = await client.post("/v1/events", json=refused, headers=fresh_key)
        assert again.status_code == 201, again.text
        listed = await client.get("/v1/events", headers=used_key)
        assert listed.status_code == 200, listed.text
        ids = [e["id"] for e in listed.json()["events"]]
        assert ids == [first.json()["receipts"][0]["id"], refused["id"]]


async def test_503_from_the_first_read_when_the_embedded_postgres_stops() -> None:
    """The embedded PostgreSQL listens on a Unix socket: once it is stopped, asyncpg's
    connect fails with a plain ``FileNotFoundError`` (an ``OSError``, no ``ConnectionError``).
    Reads answer a 503 problem from the first request on, never the 500 "internal" one.

    A regression test: the read path's error map left plain ``OSError`` out, while the
    store and the key check counted it as the database being unavailable."""
    folder = Path(tempfile.mkdtemp(prefix="frontline-pgdown-embedded-"))
    try:
        url = start_embedded(folder)
        await _create_database_at(url)
        url = with_database(url, DATABASE)
        await asyncio.to_thread(migrate.upgrade, url)
        settings = Settings(
            database_url=url, migrate_database_url=url, anonymous_reads="true", log_format="json"
        )
        async with AsyncTestClient(app=create_app(settings)) as client:
            assert (await client.get("/v1/events")).status_code == 200
            await asyncio.to_thread(stop_embedded, folder)
            for path in ("/v1/events", "/v1/events", "/v1/state", "/v1/places/sy-x"):
                assert_problem(await client.get(path), 503)
    finally:
        stop_embedded(folder)
        shutil.rmtree(folder, ignore_errors=True)


async def _create_database_at(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()
