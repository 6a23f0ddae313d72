"""Shared fixtures: a real PostgreSQL (embedded, or ``DATABASE_URL``), a migrated template
database, and a fresh database cloned from it for every test that writes."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from service.store import migrate
from service.store.db import (
    EMBEDDED_LOGIN,
    create_owner_pool,
    create_pool,
    ensure_login_role,
    start_embedded,
    stop_embedded,
    with_user,
)
from service.store.events import EventStore
from service.store.keys import KeyStore

TEMPLATE = "frontline_test_template"


def with_database(url: str, name: str) -> str:
    """The same server URL, another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A PostgreSQL server for the whole run: ``DATABASE_URL``, or an embedded one."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="frontline-test-pg-") as folder:
        url = start_embedded(Path(folder))
        try:
            yield url
        finally:
            # Stop the server before its folder goes: pgserver's own cleanup left it running.
            stop_embedded(Path(folder))


@pytest.fixture(scope="session")
def template_url(server_url: str) -> str:
    """A database migrated to head once, cloned by every test that needs one."""
    asyncio.run(
        _admin(
            server_url,
            f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)",
            f"CREATE DATABASE {TEMPLATE}",
        )
    )
    url = with_database(server_url, TEMPLATE)
    migrate.upgrade(url)
    if not os.environ.get("DATABASE_URL"):  # an external server's login is the operator's
        asyncio.run(ensure_login_role(server_url, EMBEDDED_LOGIN, "frontline_app"))
    return url


@pytest.fixture
def fresh_db(server_url: str, template_url: str) -> Iterator[str]:
    """A new database at head, dropped after the test."""
    name = "frontline_t_" + uuid.uuid4().hex[:12]
    asyncio.run(_admin(server_url, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
    yield with_database(server_url, name)
    asyncio.run(_admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def empty_db(server_url: str) -> Iterator[str]:
    """A new database with no schema at all."""
    name = "frontline_e_" + uuid.uuid4().hex[:12]
    asyncio.run(_admin(server_url, f"CREATE DATABASE {name}"))
    yield with_database(server_url, name)
    asyncio.run(_admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def settings(fresh_db: str) -> Settings:
    """Settings for a fresh database, as production would have them: the service logs in
    as the embedded server's login role (no superuser), migrations as the owner."""
    external = bool(os.environ.get("DATABASE_URL"))
    return Settings(
        database_url=fresh_db if external else with_user(fresh_db, EMBEDDED_LOGIN),
        migrate_database_url=fresh_db,
        log_format="json",
    )


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The service's pool: connections acting as the service role."""
    created = await create_pool(settings)
    yield created
    await created.close()


@pytest.fixture
async def owner_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A pool as the schema's owner, as ``frontline keys`` uses: keys are the owner's to make."""
    created = await create_owner_pool(settings)
    yield created
    await created.close()


@pytest.fixture
async def store(pool: asyncpg.Pool) -> EventStore:
    """The event store over the service's pool."""
    return EventStore(pool)


@pytest.fixture
async def owner(fresh_db: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the owning role, for looking behind the service's back."""
    conn = await asyncpg.connect(fresh_db)
    yield conn
    await conn.close()


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The real app, built by the same function production uses."""
    return create_app(settings)


@pytest.fixture
async def admin_key(owner_pool: asyncpg.Pool) -> str:
    """An admin API key in the test's database (``Authorization: Bearer <key>``)."""
    _, key = await KeyStore(owner_pool).create("test-admin", "admin")
    return key


@pytest.fixture
async def client(app: Litestar, admin_key: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An HTTP client on the real app, lifespan included, sending an admin key."""
    async with AsyncTestClient(app=app) as test_client:
        test_client.headers["authorization"] = f"Bearer {admin_key}"
        yield test_client
