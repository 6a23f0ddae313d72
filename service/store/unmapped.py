"""The read behind ``GET /v1/sides/unmapped``: the side names the log's events use that the
side registry does not know, with how much each is used."""

from __future__ import annotations

from collections.abc import Collection

import asyncpg

from contracts.registry import UnmappedSide
from service.store.queries import SQL


async def unmapped_sides(
    pool: asyncpg.Pool,
    position: int,
    known: Collection[str],
    after: tuple[int, str] | None,
    limit: int,
) -> list[UnmappedSide]:
    """Up to ``limit`` side names the events up to ``position`` state as side or opponent
    that are none of ``known`` (the registry's ids and aliases as known at ``position``),
    most used first then by name, after ``after`` (the previous page's last events and
    name)."""
    events, name = after if after is not None else (None, None)
    rows = await pool.fetch(SQL.read_unmapped_sides, position, sorted(known), events, name, limit)
    return [
        UnmappedSide(side=r["name"], events=r["events"], claims=r["claims"], places=r["places"])
        for r in rows
    ]
