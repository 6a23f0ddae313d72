"""Helpers for the HTTP tests."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

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
