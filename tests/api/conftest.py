"""Helpers for the HTTP tests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient
from litestar.types import ASGIApp

from service.server import server_config
from service.settings import Settings

PROBLEM = "application/problem+json"


def assert_problem(
    response: httpx.Response, status: int, field: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and field); return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    assert body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


async def stored_count(owner: asyncpg.Connection) -> int:
    """How many events the log holds, looked at as the owner."""
    count: int = await owner.fetchval("SELECT count(*) FROM events")
    return count


async def import_file(client: AsyncTestClient[Litestar], body: bytes, fmt: str) -> dict[str, Any]:
    """POST ``body`` to ``/v1/imports?format=fmt``, expecting 201 when it stored anything
    new and 200 when not, and return its result."""
    response = await client.post(f"/v1/imports?format={fmt}", content=body)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    assert response.status_code == (201 if result["accepted"] else 200), result
    return result


def import_counts(result: dict[str, Any]) -> tuple[int, int, int, int]:
    """An import result's accepted, duplicate, rejected and flagged counts."""
    return result["accepted"], result["duplicate"], result["rejected"], result["flagged"]


HOST = "127.0.0.1"


@asynccontextmanager
async def served(app: ASGIApp, settings: Settings) -> AsyncIterator[int]:
    """``app`` served on a free loopback port exactly as ``frontline serve`` serves it
    (uvicorn with the connection guard, ``service.server.server_config``); yields the port."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    server = uvicorn.Server(server_config(app, settings, host=HOST, port=port))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # it failed to start: say why
        await asyncio.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        await task
