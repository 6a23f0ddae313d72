"""POST /v1/events with application/x-ndjson: bulk import, bad lines reported, none lost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import stored_count
from tests.payloads import at_place, event_json

NDJSON = {"content-type": "application/x-ndjson"}
Message = dict[str, Any]
"""An ASGI message, loosely typed: the tests below speak ASGI to the app directly."""


def _lines(*items: object) -> bytes:
    return (
        b"\n".join(item if isinstance(item, bytes) else json.dumps(item).encode() for item in items)
        + b"\n"
    )


async def test_bad_lines_are_reported_and_good_ones_kept(
    admin_key: str, settings: Settings, owner: asyncpg.Connection
) -> None:
    """Good lines are stored across chunks; each bad one is listed with its line and reason."""
    app = create_app(settings.with_(import_chunk=3))
    good = [at_place(f"sy-place-{i}") for i in range(7)]
    body = _lines(
        good[0],
        b"{not json",
        good[1],
        event_json(type="massacre"),
        good[2],
        b"",
        good[3],
        good[4],
        good[0],  # already in this import: a duplicate
        event_json(credibility=9),
        good[5],
        good[6],
    )
    async with AsyncTestClient(app=app) as client:
        client.headers["authorization"] = f"Bearer {admin_key}"
        response = await client.post("/v1/events", content=body, headers=NDJSON)
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["accepted"], result["duplicate"], result["rejected"]) == (7, 1, 3)
    assert [(e["line"], e["field"]) for e in result["errors"]] == [
        (2, None),
        (4, "type"),
        (10, "credibility"),
    ]
    assert "malformed JSON" in result["errors"][0]["reason"]
    assert result["last_position"] == 7
    assert await stored_count(owner) == 7


async def test_reimport_stores_nothing_new(
    client: AsyncTestClient[Litestar], owner: asyncpg.Connection
) -> None:
    """The same file twice: the second time every line is a duplicate."""
    body = _lines(*[at_place(f"sy-place-{i}") for i in range(5)])
    first = (await client.post("/v1/events", content=body, headers=NDJSON)).json()
    second = (await client.post("/v1/events", content=body, headers=NDJSON)).json()
    assert (first["accepted"], first["duplicate"]) == (5, 0)
    assert (second["accepted"], second["duplicate"], second["rejected"]) == (0, 5, 0)
    assert await stored_count(owner) == 5


async def test_import_ignores_the_json_body_limit(admin_key: str, settings: Settings) -> None:
    """NDJSON imports stream: they are not held to the JSON body limit."""
    app = create_app(settings.with_(max_body_bytes=1000))
    body = _lines(*[at_place(f"sy-place-{i}") for i in range(20)])
    assert len(body) > 1000
    async with AsyncTestClient(app=app) as client:
        client.headers["authorization"] = f"Bearer {admin_key}"
        response = await client.post("/v1/events", content=body, headers=NDJSON)
    assert response.json()["accepted"] == 20


async def test_link_inside_one_import_chunk(client: AsyncTestClient[Litestar]) -> None:
    """A line may link to an event on an earlier line of the same import."""
    original = event_json()
    denial = event_json(
        type="statement",
        side=None,
        source={"name": "ANHA"},
        relates_to=[{"event": original["id"], "relation": "denies"}],
    )
    body = _lines(original, denial)
    result = (await client.post("/v1/events", content=body, headers=NDJSON)).json()
    assert (result["accepted"], result["rejected"]) == (2, 0), result


async def _count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await stored_count(conn)
    finally:
        await conn.close()


async def _hold_head(url: str) -> asyncpg.Connection:
    """Another session takes the log's head lock (every append waits); COMMIT releases it."""
    conn = await asyncpg.connect(url)
    await conn.execute("BEGIN")
    await conn.execute("UPDATE log_head SET position = position WHERE id = 1")
    return conn


async def _release(conn: asyncpg.Connection) -> None:
    if not conn.is_closed():
        await conn.execute("COMMIT")
        await conn.close()


@asynccontextmanager
async def _running(app: Litestar) -> AsyncIterator[None]:
    """The app's lifespan on this loop (the test client runs the app on a loop of its own),
    so that the test can call the ASGI app itself, with a receive of its own."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    asgi: Any = app
    task = asyncio.create_task(asgi(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


def _ndjson_scope(key: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/x-ndjson"),
            (b"authorization", f"Bearer {key}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }


async def test_a_client_that_disconnects_mid_body_stores_nothing_afterwards(
    admin_key: str, settings: Settings, fresh_db: str
) -> None:
    """A client sends 7 lines (lines 1-5 a chunk, held in flight at the head lock), then
    disconnects before the end of its body. The request does not end while the chunk is
    being written; once it ends, what is stored no longer changes (the chunk's 5 events,
    logged as ``import_stopped`` through line 5)."""
    app = create_app(settings.with_(import_chunk=5))
    lines = _lines(*[at_place(f"sy-p{n}") for n in range(1, 8)])
    messages: list[Message] = [
        {"type": "http.request", "body": lines, "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # nothing more ever comes
        raise AssertionError

    async def send(message: Message) -> None:
        pass

    holder = await _hold_head(fresh_db)
    try:
        async with _running(app):
            with capture_logs() as logs:
                asgi: Any = app
                request = asyncio.create_task(asgi(_ndjson_scope(admin_key), receive, send))
                await asyncio.wait({request}, timeout=1.0)
                assert not request.done(), "the request ended while its chunk was in flight"
                await _release(holder)
                await asyncio.wait_for(request, 10)
                stored_when_ended = await _count(fresh_db)
    finally:
        await _release(holder)
    assert stored_when_ended == 5
    await asyncio.sleep(0.3)
    assert await _count(fresh_db) == 5
    (stop,) = [line for line in logs if line["event"] == "import_stopped"]
    assert (stop["through_line"], stop["accepted"]) == (5, 5)


async def test_an_import_the_database_stops_answers_503_with_what_was_stored(
    admin_key: str, settings: Settings, fresh_db: str
) -> None:
    """Lines 1-3 commit; lines 4-6 wait for the head lock past the statement timeout. The
    answer is a 503 problem (``import-stopped-unavailable``) that says lines up to 3 are
    stored (``through_line``, and ``result`` with their counts) and nothing after; nothing
    else is stored once the lock is free."""
    app = create_app(settings.with_(import_chunk=3, db_timeout=1.0))
    holder: list[asyncpg.Connection] = []
    sent: list[Message] = []

    async def body() -> AsyncIterator[Message]:
        for n in range(1, 8):
            if n == 4:
                for _ in range(100):  # the first chunk commits before the lock is taken
                    if await _count(fresh_db) == 3:
                        break
                    await asyncio.sleep(0.05)
                holder.append(await _hold_head(fresh_db))
            yield {"type": "http.request", "body": _lines(at_place(f"sy-p{n}")), "more_body": True}
        yield {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client waits for the answer

    async def send(message: Message) -> None:
        sent.append(message)

    try:
        async with _running(app):
            asgi: Any = app
            await asyncio.wait_for(asgi(_ndjson_scope(admin_key), body().__anext__, send), 20)
    finally:
        for conn in holder:
            await _release(conn)
    assert sent[0]["status"] == 503
    problem = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert problem["type"].endswith("/import-stopped-unavailable")
    assert problem["through_line"] == 3
    assert (problem["result"]["accepted"], problem["result"]["rejected"]) == (3, 0)
    assert "nothing after line 3 was stored" in problem["detail"]
    await asyncio.sleep(0.3)
    assert await _count(fresh_db) == 3


async def test_a_line_over_the_limit_is_a_rejected_line(
    admin_key: str, settings: Settings, owner: asyncpg.Connection
) -> None:
    """A line longer than FRONTLINE_MAX_LINE (1,000 bytes here) is rejected by its number,
    with its length and the limit, whatever it holds (here a valid event); the lines around
    it are stored."""
    app = create_app(settings.with_(max_line_bytes=1000))
    long_line = at_place("sy-long", notes="x" * 2000)
    body = _lines(at_place("sy-a"), long_line, at_place("sy-b"))
    async with AsyncTestClient(app=app) as client:
        client.headers["authorization"] = f"Bearer {admin_key}"
        response = await client.post("/v1/events", content=body, headers=NDJSON)
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (2, 1)
    (error,) = result["errors"]
    assert error["line"] == 2
    assert f"the line is {len(json.dumps(long_line))} bytes" in error["reason"]
    assert "at most 1000 bytes" in error["reason"]
    assert await stored_count(owner) == 2


async def test_the_answer_lists_the_first_errors_and_counts_them_all(
    admin_key: str, settings: Settings, owner: asyncpg.Connection
) -> None:
    """With FRONTLINE_IMPORT_MAX_ERRORS at 3, an import of 40 bad lines and 10 good ones
    counts 40 rejected and lists the 3 of the lowest line numbers, whether a line was refused
    while parsed (bad JSON) or by the log (an id reused with other content, found when its
    chunk is written, after later lines were parsed)."""
    app = create_app(settings.with_(import_max_errors=3, import_chunk=4))
    first = at_place("sy-a")
    conflict = {**first, "place": {**first["place"], "name": "Other"}}
    items: list[object] = [first, at_place("sy-b"), conflict]
    items += [b"{oops"] * 39 + [at_place(f"sy-p{n}") for n in range(8)]
    async with AsyncTestClient(app=app) as client:
        client.headers["authorization"] = f"Bearer {admin_key}"
        response = await client.post("/v1/events", content=_lines(*items), headers=NDJSON)
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (10, 40)
    assert [e["line"] for e in result["errors"]] == [3, 4, 5]
    assert result["errors"][0]["field"] == "id"
    assert await stored_count(owner) == 10
