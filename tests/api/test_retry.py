"""Retries after a dropped connection get the original receipt; nothing is stored twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import uvicorn

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import stored_count
from tests.payloads import event_json


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[str]:
    """The real app behind a real uvicorn on loopback; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def _wait_for_events(owner: asyncpg.Connection, count: int) -> None:
    for _ in range(250):
        if await stored_count(owner) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} events were stored")


async def test_client_that_hangs_up_gets_its_receipt_on_retry(
    served: str, owner: asyncpg.Connection, admin_key: str
) -> None:
    """The client sends a POST and drops the connection; the retry gets the original receipt."""
    event = event_json()
    body = json.dumps(event).encode()
    # The key's first use looks it up in the database; after that it is cached. Warm it, so
    # that the hang-up below lands while the append is under way, not before the body is read.
    async with httpx.AsyncClient(base_url=served) as warm:
        ready = await warm.get("/v1/events", headers={"authorization": f"Bearer {admin_key}"})
        assert ready.status_code == 200
    host, port = served.removeprefix("http://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /v1/events HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {admin_key}\r\n".encode()
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    writer.close()  # gone before the answer
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    await _wait_for_events(owner, 1)
    stored_position = await owner.fetchval("SELECT position FROM events WHERE id = $1", event["id"])
    auth = {"authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=served, headers=auth) as client:
        retry = await client.post("/v1/events", json=event)
    assert retry.status_code == 200
    receipt = retry.json()["receipts"][0]
    assert receipt["duplicate"] is True
    assert receipt["position"] == stored_position
    assert await stored_count(owner) == 1


async def test_database_connections_dropped_then_retry(
    served: str, owner: asyncpg.Connection, admin_key: str
) -> None:
    """The service's database connections are killed: the POST still succeeds (the store
    retries once on fresh connections), never half-writes, and the client's retry gets the
    original receipt, leaving exactly one copy."""
    event = event_json()
    auth = {"authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=served, headers=auth) as client:
        assert (await client.post("/v1/events", json=event_json())).status_code == 201
        await owner.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'frontline' AND datname = current_database()"
        )
        # The dead pooled connections are replaced: the append goes through on a fresh one
        # (it used to answer 503, and under load its retry too, on another dead connection).
        first = await client.post("/v1/events", json=event)
        assert first.status_code == 201, first.text
        retry = await client.post("/v1/events", json=event)
    assert retry.status_code == 200, retry.text
    assert retry.json()["receipts"][0]["duplicate"] is True
    stored_position = await owner.fetchval("SELECT position FROM events WHERE id = $1", event["id"])
    assert retry.json()["receipts"][0]["position"] == stored_position
    assert await stored_count(owner) == 2
