"""The baseline of the POST benchmark: a bare Litestar + asyncpg endpoint, one INSERT a request.

It does what any service must do for one event and nothing more: decode the JSON, derive the
columns, and INSERT one row into a table shaped like ``events`` (same columns, types,
constraints and indexes; no trigger), with a position from a sequence, ``synchronous_commit``
on, through a pool of the same size as the service's. No validation beyond decoding, no
idempotency, no per-place versions (the position stands in), no hash chain, no head lock, no
log line. Served by uvicorn exactly as ``frontline serve`` serves the service.

    DATABASE_URL=... python -m bench.bare_app --port 8101 --table bench_bare --pool-max 10
"""

from __future__ import annotations

import argparse
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg
import msgspec
from litestar import Litestar, Request, Response, get, post

ZERO_HASH: Final = bytes(32)


class _Ref(msgspec.Struct):
    id: str


class _Source(msgspec.Struct):
    name: str


class _Occurred(msgspec.Struct):
    start: str


class _Event(msgspec.Struct):
    type: str
    place: _Ref
    occurred: _Occurred
    source: _Source
    id: uuid.UUID | None = None


_decode: Final = msgspec.json.Decoder(_Event).decode
_encode: Final = msgspec.json.Encoder().encode


def insert_sql(table: str) -> str:
    """The one statement a request runs: a position from the table's sequence, one row."""
    if not table.replace("_", "").isalnum():
        raise ValueError(f"unsafe table name {table!r}")
    return f"""
        WITH p AS (SELECT nextval('{table}_position') AS n)
        INSERT INTO {table} (position, id, place_id, place_version, type, source_key,
                             valid_from, valid_to, recorded_at, commit_position, submitter,
                             payload, payload_digest, record, prev_hash, hash)
        SELECT p.n, $1, $2, p.n, $3, $4, $5, $6, clock_timestamp(), p.n, NULL, $7, $8, $9,
               $10, $11
        FROM p
        RETURNING position, recorded_at
    """


def create_app(database_url: str, table: str, pool_min: int, pool_max: int) -> Litestar:
    """The baseline app: one route, one pool."""
    sql = insert_sql(table)
    holder: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        holder["pool"] = await asyncpg.create_pool(
            database_url,
            min_size=pool_min,
            max_size=pool_max,
            server_settings={"synchronous_commit": "on", "application_name": "bench_bare"},
        )
        try:
            yield
        finally:
            await holder["pool"].close()

    @post("/v1/events", status_code=201)
    async def append(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await request.body()
        event = _decode(body)
        event_id = event.id or uuid.uuid4()
        day = datetime.fromisoformat(event.occurred.start[:10]).replace(tzinfo=UTC)
        digest = hashlib.sha256(body).digest()
        record = _encode({"id": str(event_id), "payload_sha256": digest.hex(), "v": 1})
        row = await holder["pool"].fetchrow(
            sql,
            event_id,
            event.place.id,
            event.type,
            event.source.name.casefold(),
            day,
            day + timedelta(days=1),
            body.decode(),
            digest,
            record.decode(),
            ZERO_HASH,
            hashlib.sha256(ZERO_HASH + record).digest(),
        )
        assert row is not None  # INSERT ... RETURNING returns the row
        receipt = {"id": event_id, "position": row["position"], "recorded_at": row["recorded_at"]}
        return Response(_encode({"receipts": [receipt]}), media_type="application/json")

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(
        route_handlers=[append, health],
        lifespan=[lifespan],
        logging_config=None,
        debug=False,
    )


def main() -> None:
    """Serve the baseline on 127.0.0.1 with uvicorn, as ``frontline serve`` does."""
    import uvicorn

    args = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    args.add_argument("--port", type=int, required=True)
    args.add_argument("--table", default="bench_bare")
    args.add_argument("--pool-min", type=int, default=2)
    args.add_argument("--pool-max", type=int, default=10)
    options = args.parse_args()
    app = create_app(os.environ["DATABASE_URL"], options.table, options.pool_min, options.pool_max)
    uvicorn.run(app, host="127.0.0.1", port=options.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
