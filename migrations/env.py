"""Alembic environment: runs the raw SQL migrations over asyncpg, as the owning role."""

from __future__ import annotations

import asyncio
from functools import partial

import asyncpg
from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config


def _run(connection: Connection) -> None:
    # One transaction for the whole run: a refused step (a downgrade that would drop events)
    # leaves the schema exactly where it was.
    context.configure(connection=connection, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations")
    # asyncpg reads the URL itself, as the service's pool does: SQLAlchemy would pass its
    # query as keyword arguments, and asyncpg.connect() takes no ``sslmode`` (TLS settings
    # of a managed PostgreSQL: ``?sslmode=verify-full&sslrootcert=...``).
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    engine = create_async_engine(
        "postgresql+asyncpg://",
        async_creator=partial(asyncpg.connect, dsn),
        poolclass=pool.NullPool,
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) mode is not supported; run `frontline migrate`")
asyncio.run(_run_online())
