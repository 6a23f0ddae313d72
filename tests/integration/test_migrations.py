"""The schema's life (alembic) and the log's protection in PostgreSQL (DESIGN 6 and 7).

The migration tests are plain sync functions: alembic's ``env.py`` calls ``asyncio.run``, which
cannot run inside the test's event loop. Their database checks use ``asyncio.run`` too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import asyncpg
import pytest
import sqlalchemy.exc
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.settings import Settings
from service.store import migrate
from service.store.db import create_pool
from service.store.events import EventStore
from tests.integration.helpers import Conn, append_ok, log_state
from tests.payloads import at_place, event_json

T = TypeVar("T")

LOG_TABLES: Final = frozenset({"events", "event_links", "places", "log_head"})


def on_db(url: str, work: Callable[[Conn], Awaitable[T]]) -> T:
    """Run ``work`` on a connection as the owner, from sync code."""

    async def run() -> T:
        conn = await asyncpg.connect(url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


async def _tables(conn: Conn) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r["tablename"] for r in rows}


async def _revision(conn: Conn) -> str | None:
    value = await conn.fetchval("SELECT max(version_num) FROM alembic_version")
    return None if value is None else str(value)


async def _functions(conn: Conn) -> set[str]:
    rows = await conn.fetch(
        "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
    )
    return {r["proname"] for r in rows}


def fill(settings: Settings, count: int) -> None:
    """Append ``count`` events through the service's store, as the service role."""

    async def run() -> None:
        pool = await create_pool(settings)
        try:
            store = EventStore(pool)
            for _ in range(count):
                await append_ok(store, event_json())
        finally:
            await pool.close()

    asyncio.run(run())


def downgrade_to_base(url: str) -> None:
    """Downgrade, turning a failure into a failed assertion that shows the database's words."""
    try:
        migrate.downgrade(url, "base")
    except sqlalchemy.exc.DBAPIError as error:
        pytest.fail(f"downgrade to base of a database whose log is empty failed: {error.orig}")


def test_upgrade_creates_the_schema_on_an_empty_database(empty_db: str) -> None:
    """upgrade head on a database with nothing in it creates every table of the log, the
    append-only function, an empty head row, and records the head revision."""
    assert on_db(empty_db, _tables) == set()
    migrate.upgrade(empty_db)
    assert on_db(empty_db, _tables) >= LOG_TABLES | {"alembic_version"}
    assert on_db(empty_db, _revision) == migrate.head_revision()
    assert "frontline_refuse_change" in on_db(empty_db, _functions)

    async def head(conn: Conn) -> tuple[int, bytes]:
        row = await conn.fetchrow("SELECT position, hash FROM log_head")
        assert row is not None
        return row["position"], bytes(row["hash"])

    assert on_db(empty_db, head) == (0, bytes(32))


def test_upgrade_is_idempotent(empty_db: str) -> None:
    """upgrade head on a database already at head changes nothing and does not fail."""
    migrate.upgrade(empty_db)
    migrate.upgrade(empty_db)
    assert on_db(empty_db, _revision) == migrate.head_revision()


def test_upgrade_takes_a_url_with_tls_settings(empty_db: str) -> None:
    """A URL with ``sslmode`` (a managed PostgreSQL's TLS settings) migrates as the service
    connects: asyncpg reads the URL itself.

    Regression test (migrations/env.py): SQLAlchemy passed the URL's query to
    ``asyncpg.connect`` as keyword arguments, so ``?sslmode=...`` failed with ``TypeError:
    connect() got an unexpected keyword argument 'sslmode'`` before any migration ran.
    """
    separator = "&" if "?" in empty_db else "?"
    migrate.upgrade(f"{empty_db}{separator}sslmode=prefer")
    assert on_db(empty_db, _revision) == migrate.head_revision()


def test_downgrade_to_base_drops_the_schema_and_upgrade_rebuilds_it(empty_db: str) -> None:
    """With an empty log, downgrade base drops every table and function of the log (the
    downgrade is real), and upgrade head afterwards builds the schema again."""
    migrate.upgrade(empty_db)
    downgrade_to_base(empty_db)
    assert on_db(empty_db, _tables) & LOG_TABLES == set()
    assert "frontline_refuse_change" not in on_db(empty_db, _functions)
    assert on_db(empty_db, _revision) is None
    migrate.upgrade(empty_db)
    assert on_db(empty_db, _tables) >= LOG_TABLES
    assert on_db(empty_db, _revision) == migrate.head_revision()


def test_downgrade_refuses_while_the_log_holds_events(fresh_db: str, settings: Settings) -> None:
    """downgrade base on a log with events raises, saying it refuses and how many events it
    would drop; the schema stays at head and every event stays."""
    fill(settings, 3)
    with pytest.raises(sqlalchemy.exc.DBAPIError, match=r"refusing to downgrade") as raised:
        migrate.downgrade(fresh_db, "base")
    cause = raised.value.orig
    assert cause is not None
    assert "holds 3 events" in str(cause)
    assert isinstance(cause.__cause__, asyncpg.ObjectInUseError)
    assert on_db(fresh_db, _revision) == migrate.head_revision()
    events, _, head, places = on_db(fresh_db, log_state)
    assert (events, head, len(places)) == (3, 3, 1)


# --- the log is append-only in the database itself ------------------------------------------


async def _fill_with_a_link(store: EventStore) -> None:
    """Two events, the second denying the first, so events and event_links both hold rows."""
    (first,) = await append_ok(store, event_json())
    await append_ok(
        store,
        event_json(
            type="statement",
            side=None,
            source={"name": "Amaq"},
            relates_to=[{"event": str(first.id), "relation": "denies"}],
        ),
    )


CHANGES: Final = {
    "UPDATE events": "UPDATE events SET type = 'strike'",
    "DELETE events": "DELETE FROM events",
    "TRUNCATE events": "TRUNCATE events",
    "UPDATE event_links": "UPDATE event_links SET relation = 'confirms'",
    "DELETE event_links": "DELETE FROM event_links",
    "TRUNCATE event_links": "TRUNCATE event_links",
}


@pytest.mark.parametrize("statement", CHANGES.values(), ids=CHANGES.keys())
async def test_the_service_role_cannot_change_the_log(
    statement: str, store: EventStore, pool: asyncpg.Pool, owner: Conn, settings: Settings
) -> None:
    """The service's connections act as a role without UPDATE, DELETE or TRUNCATE on the
    log's tables: the database refuses by privilege (before any trigger), nothing changes."""
    await _fill_with_a_link(store)
    before = await log_state(owner)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == settings.db_role
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.execute(statement)
    assert await log_state(owner) == before


async def test_the_service_role_owns_nothing(pool: asyncpg.Pool, settings: Settings) -> None:
    """The service role does not own the log's tables (an owner could drop the triggers)."""
    async with pool.acquire() as conn:
        owners = await conn.fetch(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
        )
    assert {r["tablename"] for r in owners} >= LOG_TABLES
    assert all(r["tableowner"] != settings.db_role for r in owners)


@pytest.mark.parametrize("statement", CHANGES.values(), ids=CHANGES.keys())
async def test_the_trigger_refuses_changes_even_to_the_owner(
    statement: str, store: EventStore, owner: Conn
) -> None:
    """The owner (a superuser here) passes every privilege check, and the append-only
    trigger still refuses UPDATE, DELETE and TRUNCATE on events and event_links."""
    await _fill_with_a_link(store)
    before = await log_state(owner)
    assert before[0:2] == (2, 1)
    assert await owner.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await owner.execute(statement)
    assert await log_state(owner) == before


@pytest.mark.parametrize("statement", ["DELETE FROM log_head", "TRUNCATE log_head"])
async def test_the_head_row_cannot_be_removed(
    statement: str, store: EventStore, owner: Conn
) -> None:
    """The head row every appender locks cannot be deleted, even by the owner."""
    await append_ok(store, at_place("sy-khanasser"))
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await owner.execute(statement)
    assert await owner.fetchval("SELECT position FROM log_head") == 1


# --- /ready ---------------------------------------------------------------------------------


async def test_ready_at_head(client: AsyncTestClient[Litestar]) -> None:
    """/ready says 200 with the revision when the database answers and is at head."""
    response = await client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"]) == ("ready", "ok")
    assert body["migration"] == migrate.head_revision()


async def test_ready_is_503_when_the_revision_is_not_the_head(
    client: AsyncTestClient[Litestar], owner: Conn
) -> None:
    """/ready says 503 when the database is at another revision than the code expects."""
    await owner.execute("UPDATE alembic_version SET version_num = '0000'")
    response = await client.get("/ready")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 503
    assert "0000" in body["detail"]
    assert migrate.head_revision() in body["detail"]


class TestReadyOnAnUnmigratedDatabase:
    """The app built on a database nobody migrated."""

    @pytest.fixture
    def settings(self, empty_db: str, template_url: str) -> Settings:
        """Settings for an empty database (template_url: the service role exists)."""
        return Settings(database_url=empty_db, migrate_database_url=empty_db, log_format="json")

    @pytest.fixture
    def admin_key(self) -> str:
        """No key can exist before the migrations: /ready and /health need none."""
        return "flk_none"

    async def test_ready_is_503_with_a_problem(self, client: AsyncTestClient[Litestar]) -> None:
        """/ready says 503 with an RFC 9457 body telling to migrate; the service never
        creates the schema itself, and /health still says the process is up."""
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["status"] == 503
        assert body["type"].endswith("/unavailable")
        assert body["title"]
        assert "schema is at nothing" in body["detail"]
        assert migrate.head_revision() in body["detail"]
        assert "frontline migrate" in body["detail"]
        assert (await client.get("/health")).status_code == 200
