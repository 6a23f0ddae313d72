"""An import that fails half-way never stores anything after it has failed.

An NDJSON import writes one chunk while it parses the next. Once, an import answered 500
while its chunk was still being written, and the chunk committed a second later: 10,000
events stored by a request that had failed. Now whatever stops an import (an error while
parsing, a chunk that fails, a cancellation) waits for the chunk in flight to end before the
import ends, and reports how far every line's fate is known (``through_line``).

The chunk is held in flight by another transaction holding the log's head lock, which every
append takes first; the failures are real ones (a statement timeout, a cancellation) or an
error injected into the parsing of one line.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from structlog.testing import capture_logs

from service.domain.records import prepare_event
from service.errors import ImportStopped, ImportStoppedUnavailable
from service.interop.formats import read_all
from service.interop.prepare import prepare_row
from service.settings import Settings
from service.store.db import create_pool
from service.store.events import EventStore
from service.usecases.ingest import import_ndjson, import_rows
from tests.payloads import at_place

ACLED = Path(__file__).resolve().parents[1] / "fixtures" / "interop" / "acled.csv"
#: How long an import is given to end on its own while its chunk cannot commit.
PATIENCE = 1.0


class HeadLock:
    """Another session holding the log's head lock: every append waits until release."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: asyncpg.Connection | None = None

    async def take(self) -> None:
        self.conn = await asyncpg.connect(self.url)
        await self.conn.execute("BEGIN")
        await self.conn.execute("UPDATE log_head SET position = position WHERE id = 1")

    async def release(self) -> None:
        if self.conn is not None:
            await self.conn.execute("COMMIT")
            await self.conn.close()
            self.conn = None


@pytest.fixture
async def head_lock(fresh_db: str) -> AsyncIterator[HeadLock]:
    """The head lock's holder (released at the end in any case)."""
    lock = HeadLock(fresh_db)
    yield lock
    await lock.release()


def _line(place: str) -> bytes:
    return msgspec.json.encode(at_place(place))


async def _numbered(lines: list[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    for number, line in enumerate(lines, 1):
        yield number, line


async def _count(owner: Any) -> int:
    count: int = await owner.fetchval("SELECT count(*) FROM events")
    return count


async def test_an_error_while_parsing_waits_for_the_chunk_being_written(
    store: EventStore, owner: Any, head_lock: HeadLock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines 1-5 are a chunk, being written (held at the head lock); parsing line 7 fails
    (an error injected into the pipeline). The import does not end while its chunk is in
    flight; once the chunk commits it raises ImportStopped: lines up to 5 stored (their fate
    in ``result``), nothing after; and nothing is stored after it has raised."""
    real = prepare_event

    def failing(event: Any) -> Any:
        if event.place.id == "sy-boom":
            raise RuntimeError("injected")
        return real(event)

    monkeypatch.setattr("service.usecases.ingest.prepare_event", failing)
    lines = [_line(f"sy-p{n}") for n in range(1, 7)] + [_line("sy-boom")]
    await head_lock.take()
    task = asyncio.create_task(import_ndjson(store, _numbered(lines), chunk_size=5))
    await asyncio.wait({task}, timeout=PATIENCE)
    assert not task.done(), "the import ended while its chunk was still being written"
    await head_lock.release()
    with pytest.raises(ImportStopped) as stopped:
        await task
    assert stopped.value.through_line == 5
    result = stopped.value.result
    assert (result.accepted, result.duplicate, result.rejected) == (5, 0, 0)
    assert isinstance(stopped.value.__cause__, RuntimeError)
    assert "nothing after line 5 was stored" in stopped.value.detail
    assert await _count(owner) == 5
    await asyncio.sleep(0.3)
    assert await _count(owner) == 5


async def test_a_cancelled_import_ends_after_its_chunk_and_says_how_far_it_got(
    store: EventStore, owner: Any, head_lock: HeadLock
) -> None:
    """A client sends 7 lines then nothing more; the request is cancelled while lines 1-5
    are being written. The cancellation does not abandon the chunk half-way (it might
    still commit): the import ends once the chunk has, then raises the cancellation, and
    logs that lines up to 5 have a known fate."""
    lines = [_line(f"sy-p{n}") for n in range(1, 8)]
    waiting = asyncio.Event()

    async def slow_client() -> AsyncIterator[tuple[int, bytes]]:
        async for item in _numbered(lines):
            yield item
        waiting.set()
        await asyncio.Event().wait()  # the rest of the body never comes

    await head_lock.take()
    with capture_logs() as logs:
        task = asyncio.create_task(import_ndjson(store, slow_client(), chunk_size=5))
        await asyncio.wait_for(waiting.wait(), 5)
        task.cancel()
        await asyncio.wait({task}, timeout=PATIENCE)
        assert not task.done(), "the cancelled import ended while its chunk was in flight"
        await head_lock.release()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await _count(owner) == 5
    (stop,) = [line for line in logs if line["event"] == "import_stopped"]
    assert (stop["through_line"], stop["accepted"], stop["error_type"]) == (
        5,
        5,
        "CancelledError",
    )
    await asyncio.sleep(0.3)
    assert await _count(owner) == 5


async def test_a_chunk_that_times_out_stops_the_import_with_what_was_stored(
    settings: Settings, owner: Any, head_lock: HeadLock
) -> None:
    """Lines 1-3 commit; lines 4-6 wait for the head lock past the statement timeout
    (FRONTLINE_DB_TIMEOUT, 1 s here): the import stops with ImportStoppedUnavailable (503),
    lines up to 3 stored and counted, nothing after line 3 stored, even once the lock is
    free again."""
    pool = await create_pool(settings.with_(db_timeout=1.0))
    store = EventStore(pool)
    lines = [_line(f"sy-p{n}") for n in range(1, 8)]

    async def client() -> AsyncIterator[tuple[int, bytes]]:
        async for number, line in _numbered(lines):
            if number == 4:
                for _ in range(100):  # the first chunk commits before the lock is taken
                    if await _count(owner) == 3:
                        break
                    await asyncio.sleep(0.05)
                await head_lock.take()
            yield number, line

    try:
        with pytest.raises(ImportStoppedUnavailable) as stopped:
            await import_ndjson(store, client(), chunk_size=3)
    finally:
        await head_lock.release()
        await pool.close()
    assert stopped.value.through_line == 3
    assert stopped.value.result.accepted == 3
    assert "database is unavailable" in stopped.value.detail
    await asyncio.sleep(0.3)
    assert await _count(owner) == 3


async def test_a_source_import_stopped_half_way_waits_for_its_chunk(
    store: EventStore, owner: Any, head_lock: HeadLock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /v1/imports's pipeline (``import_rows``): the ACLED fixture in chunks of 2
    events, the first held in flight at the head lock, and an error injected while the 5th
    row is prepared. The import ends only once its chunk has, then raises ImportStopped whose
    ``through_line`` and ``result`` match exactly what is stored, and nothing more is."""
    rows = read_all("acled", ACLED.read_bytes())
    boom = rows[4]
    real = prepare_row

    def failing(row: Any, index: Any, **options: Any) -> Any:
        if row is boom:
            raise RuntimeError("injected")
        return real(row, index, **options)

    monkeypatch.setattr("service.usecases.ingest.prepare_row", failing)
    await head_lock.take()
    task = asyncio.create_task(import_rows(store, rows, chunk_size=2))
    await asyncio.wait({task}, timeout=PATIENCE)
    assert not task.done(), "the import ended while its chunk was still being written"
    await head_lock.release()
    with pytest.raises(ImportStopped) as stopped:
        await task
    result, through_line = stopped.value.result, stopped.value.through_line
    assert 0 < through_line < boom.line
    expected = {
        uuid.UUID(event["id"]) for row in rows if row.line <= through_line for event in row.events
    }
    assert {r["id"] for r in await owner.fetch("SELECT id FROM events")} == expected
    assert result.accepted == len(expected)
    await asyncio.sleep(0.3)
    assert await _count(owner) == len(expected)
