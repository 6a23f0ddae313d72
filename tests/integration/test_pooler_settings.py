"""Through a transaction pooler (``FRONTLINE_DB_POOLER=transaction``) nothing is set per
connection: each append transaction sets its role and durability itself (``SET LOCAL``), and
no prepared statement is kept by name."""

from __future__ import annotations

import asyncpg
import pytest

from service.settings import Settings
from service.store.db import create_pool, local_settings
from service.store.events import EventStore
from tests.integration.helpers import request
from tests.payloads import event_json


async def test_an_append_sets_its_role_for_its_transaction_alone(settings: Settings) -> None:
    """With the pooler's settings the connection acts as the login role (no ``role`` sent at
    connect), which may not write the log; the append's ``SET LOCAL`` makes it act as the
    service role for its own transaction, and the connection is the login role again after
    it (nothing stays on a server connection the pooler would hand to another client)."""
    pooled = settings.with_(db_pooler="transaction", direct_url=settings.database_url)
    pool = await create_pool(pooled)
    try:
        login = await pool.fetchval("SELECT current_user")
        assert login != pooled.db_role
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await EventStore(pool).append_group([request(event_json())])
        store = EventStore(pool, local_settings=local_settings(pooled))
        (receipts,) = await store.append_group([request(event_json())])
        assert isinstance(receipts, list), receipts
        assert receipts[0].position == 1
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_user") == login
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
            # asyncpg kept no named statement on the connection (statement_cache_size=0).
            assert await conn.fetchval("SELECT count(*) FROM pg_prepared_statements") == 0
    finally:
        await pool.close()


async def test_a_direct_connection_needs_no_local_settings(settings: Settings) -> None:
    """On a direct connection the session acts as the service role from the start, so the
    store sets nothing per transaction."""
    assert local_settings(settings) is None
    pool = await create_pool(settings)
    try:
        assert await pool.fetchval("SELECT current_user") == settings.db_role
        assert isinstance(pool, asyncpg.Pool)
    finally:
        await pool.close()
