"""The asyncio client: the same calls as the sync one, awaited, against the real served app."""

from __future__ import annotations

import asyncio
import io

import asyncpg
import pytest

from contracts.idempotency import keyed_event_id
from frontline.client import AsyncClient, Conflict, InvalidInput, Retry
from tests.api.conftest import stored_count
from tests.client.conftest import Proxy, Served
from tests.payloads import at_place, event_json


async def test_async_append_batch_expect_and_problems(
    served: Served, owner: asyncpg.Connection
) -> None:
    """Append without an id (the derived id), a batch whose ``expect`` fails (Conflict, nothing
    written), a 422 raised with its field."""
    async with AsyncClient(served.url, served.key) as frontline:
        first = await frontline.append(event_json(id=None), idempotency_key="async-1")
        assert first.receipts[0].id == keyed_event_id("async-1", 0)
        with pytest.raises(Conflict) as conflict:
            await frontline.append_batch(
                [event_json(id=None), at_place("sy-raqqa", id=None)],
                expect={"sy-maskanah": "none"},
            )
        assert conflict.value.extensions["place"] == "sy-maskanah"
        with pytest.raises(InvalidInput) as invalid:
            await frontline.append(event_json(id=None, type="teleport"))
        assert invalid.value.field == "type"
    assert await stored_count(owner) == 1


async def test_async_retry_after_a_dropped_connection_stores_once(
    served: Served, proxy: Proxy, owner: asyncpg.Connection
) -> None:
    """The answer to the first POST is lost; the retry is a duplicate of the stored event."""
    proxy.plan = ["swallow"]
    async with AsyncClient(proxy.url, served.key, retry=Retry(backoff=0.05)) as frontline:
        result = await frontline.append(event_json(id=None), idempotency_key="async-drop")
    assert result.receipts[0].duplicate
    assert result.receipts[0].id == keyed_event_id("async-drop", 0)
    assert await stored_count(owner) == 1


async def test_async_ndjson_pages_tables_and_export(served: Served) -> None:
    """An NDJSON stream in chunks, the log and the front read over pages with ``async for``,
    a table, and an export."""
    async with AsyncClient(served.url, served.key) as frontline:
        lines = [at_place(f"sy-async-{i:02}", id=None) for i in range(11)]
        result = await frontline.import_events(lines, chunk_lines=4)
        assert (result.accepted, result.rejected) == (11, 0)
        positions = [e.position async for e in frontline.events(page_size=3)]
        assert positions == list(range(1, 12))
        pages = frontline.state(valid_at="2017-06-05", page_size=4)
        frame = await pages.frame()
        assert frame is not None
        assert frame.known_position == 11
        places = [s.place.id async for s in pages]
        assert places == [f"sy-async-{i:02}" for i in range(11)]
        table = await frontline.events().to_pandas()
        assert len(table) == 11
        out = io.BytesIO()
        done = await frontline.export(out)
        assert done.position == 11
        assert out.getvalue().count(b"\n") == 11
        assert (await frontline.verify()).ok


async def test_async_place_events_reads_every_page(served: Served) -> None:
    """The async ``place_events`` follows the place's pages and answers every event once, in
    position order, with no next page left."""
    async with AsyncClient(served.url, served.key) as frontline:
        await frontline.append_batch([at_place("sy-paged", id=None) for _ in range(3)])
        paged = await frontline.place_events("sy-paged", page_size=2)
        whole = await frontline.place_events("sy-paged")
    assert len(whole.events) == 3
    assert [e.id for e in paged.events] == [e.id for e in whole.events]
    assert (paged.total, paged.next_cursor, paged.next) == (3, None, None)


async def test_async_follow_resumes_after_a_cut(served: Served, proxy: Proxy) -> None:
    """The async live stream cut after its first message resumes with no gap or duplicate,
    then delivers an event appended while it waits."""
    async with AsyncClient(served.url, served.key) as writer:
        await writer.append_batch([at_place(f"sy-live-{i}", id=None) for i in range(3)])
        proxy.plan = ["cut:id: 2\n"]
        async with (
            AsyncClient(proxy.url, served.key, retry=Retry(backoff=0.05)) as frontline,
            frontline.follow() as live,
        ):
            positions = [(await anext(live)).position for _ in range(3)]
            assert live.reconnects == 1
            waiting = asyncio.ensure_future(anext(live))
            await asyncio.sleep(0.2)
            await writer.append(at_place("sy-live-late", id=None))
            late = await asyncio.wait_for(waiting, timeout=10)
    assert positions == [1, 2, 3]
    assert late.position == 4
