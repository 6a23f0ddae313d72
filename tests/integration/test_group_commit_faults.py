"""A group that fails on one wait does not fail the requests queued behind it.

The group committer fails everything queued when a group's failure shows the database
unreachable (so a queue of n does not wait n/2 timeouts), but a head-lock wait that runs over
``FRONTLINE_DB_TIMEOUT`` (behind a rebuild, or another process's long commit) is no outage:
the database still answers, and the requests queued behind are written once the lock frees.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from contracts.responses import Receipt
from service.errors import NotReady
from service.settings import Settings
from service.store.appender import GroupCommitter
from service.store.db import create_pool
from service.store.events import EventStore
from tests.integration.helpers import request
from tests.payloads import at_place

DB_TIMEOUT = 2.0


@pytest.fixture
async def short_pool(fresh_db: str) -> AsyncIterator[asyncpg.Pool]:
    """The service's pool with statements bounded by DB_TIMEOUT seconds."""
    settings = Settings(database_url=fresh_db, migrate_database_url=fresh_db, db_timeout=DB_TIMEOUT)
    created = await create_pool(settings)
    yield created
    await created.close()


async def test_a_head_lock_wait_over_the_timeout_fails_only_its_own_group(
    short_pool: asyncpg.Pool, owner: asyncpg.Connection
) -> None:
    """Another session holds the head lock for 1.5 timeouts: the two groups waiting on it
    when the timeout strikes answer NotReady (503), and the three requests queued behind
    them are written once the lock frees (they were drained and failed with the two)."""
    committer = GroupCommitter(EventStore(short_pool), group_max=64)
    committer.start()
    try:
        holder = owner.transaction()
        await holder.start()
        await owner.execute("UPDATE log_head SET position = position WHERE id = 1")
        heads = [
            asyncio.ensure_future(committer.append(request(at_place(f"sy-head-{n}"))))
            for n in range(2)
        ]
        await asyncio.sleep(0.2)  # each writer holds one head, waiting for the lock
        queued = [
            asyncio.ensure_future(committer.append(request(at_place(f"sy-queued-{n}"))))
            for n in range(3)
        ]
        await asyncio.sleep(1.5 * DB_TIMEOUT)
        await holder.rollback()
        head_results = await asyncio.gather(*heads, return_exceptions=True)
        queued_results = await asyncio.gather(*queued, return_exceptions=True)
    finally:
        await committer.stop()
    assert all(isinstance(r, NotReady) for r in head_results), head_results
    assert all(isinstance(r, list) and isinstance(r[0], Receipt) for r in queued_results), (
        queued_results
    )
    assert await owner.fetchval("SELECT count(*) FROM events") == 3
