"""Exports of the log: the same question, the same bytes, the same ETag."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import asyncpg
import msgspec

from contracts.events import event_decoder
from service.domain.export import LOG_COLUMNS, csv_rows, log_row
from service.interop import acled
from service.query import KnownAt
from service.store.events import EventFilter, EventStore
from service.store.queries import SQL

LOG_FORMATS: Final = ("ndjson", "csv", "acled")
_encode = msgspec.json.Encoder().encode


async def log_position(pool: asyncpg.Pool, known: KnownAt) -> tuple[int, bytes]:
    """The commit position ``known`` names in the log (default: the head) and its hash."""
    if known.position is not None:
        position: int = await pool.fetchval(SQL["resolve_known_position"], known.position)
    elif known.time is not None:
        position = await pool.fetchval(SQL["resolve_known_time"], known.time)
    else:
        position = await pool.fetchval(SQL["read_head"])
    chain_hash = await pool.fetchval(SQL["read_hash_at_or_genesis"], position)
    return position, bytes(chain_hash)


async def log_chunks(store: EventStore, position: int, fmt: str) -> AsyncIterator[bytes]:
    """The log's events 1..``position`` as NDJSON lines, or CSV rows (header first) in
    Frontline's columns (``csv``) or ACLED's plus Frontline's (``acled``)."""
    if fmt == "csv":
        yield csv_rows([LOG_COLUMNS])
    elif fmt == "acled":
        yield csv_rows([acled.EXPORT_COLUMNS])
    batch: list[bytes] = []
    rows: list[tuple[object, ...]] = []
    if position == 0:
        return
    async for stored in store.stream(0, EventFilter(), position):
        if fmt == "csv":
            rows.append(log_row(stored, event_decoder.decode(bytes(stored.event))))
            if len(rows) >= 1000:
                yield csv_rows(rows)
                rows.clear()
        elif fmt == "acled":
            exported = acled.export_row(
                position=stored.position,
                event_id=str(stored.id),
                kind=stored.type,
                place_id=stored.place,
                recorded_at=stored.recorded_at,
                event=event_decoder.decode(bytes(stored.event)),
            )
            if exported is not None:
                rows.append(exported)
            if len(rows) >= 1000:
                yield csv_rows(rows)
                rows.clear()
        else:
            batch.append(_encode(stored))
            if len(batch) >= 1000:
                yield b"\n".join(batch) + b"\n"
                batch.clear()
    if rows:
        yield csv_rows(rows)
    if batch:
        yield b"\n".join(batch) + b"\n"
