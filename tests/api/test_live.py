"""GET /v1/events/stream on a real server (uvicorn on a socket, as production serves it):
live delivery, heartbeats, resuming with Last-Event-ID while writers append, a slow client."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from service.app import create_app
from service.settings import Settings
from service.store import live as live_module
from service.store.events import EventStore
from tests.api.conftest import HOST, assert_problem, served
from tests.payloads import at_place, event_json


@dataclass(frozen=True)
class Live:
    """A served app: its port and an admin key."""

    port: int
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"}


@pytest.fixture
async def live(settings: Settings, admin_key: str) -> AsyncIterator[Live]:
    """A served app with quick heartbeats and a short stall limit."""
    quick = settings.with_(stream_heartbeat=0.4, stream_poll=0.2, stream_stall=0.5)
    async with served(create_app(quick), quick) as port:
        yield Live(port, admin_key)


class Stream:
    """A raw HTTP/1.1 stream: the head, then the chunked body as it comes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = b""
        self.ended = False

    @classmethod
    async def open(
        cls, live: Live, target: str, headers: dict[str, str], rcvbuf: int | None = None
    ) -> tuple[Stream, int]:
        port = live.port
        headers = {**live.auth, **headers}
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
        # A small reader limit: the test's own buffer must not soak up what it does not read.
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**16)
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\n{lines}\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return cls(reader, writer), status

    async def more(self, wait: float = 5.0) -> bool:
        """Read one chunk into the buffer; False at the end of the body (or of the socket)."""
        if self.ended:
            return False
        try:
            size_line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), wait)
        except asyncio.IncompleteReadError:  # the server closed the connection
            self.ended = True
            return False
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            self.ended = True
            return False
        self.buffer += await self.reader.readexactly(size)
        await self.reader.readexactly(2)
        return True

    def messages(self) -> list[bytes]:
        """Whole SSE messages received so far (taken from the buffer)."""
        *whole, self.buffer = self.buffer.split(b"\n\n")
        return whole

    def kill(self) -> None:
        """Drop the connection at once, as a crashed client does."""
        self.writer.transport.abort()
        self.writer.close()


def parse(message: bytes) -> tuple[int | None, dict[str, Any] | None]:
    """(id, stored event) of an SSE message; (None, None) for a heartbeat comment."""
    if message.startswith(b":"):
        return None, None
    fields = dict(line.split(b": ", 1) for line in message.split(b"\n"))
    assert fields[b"event"] == b"event"
    event = json.loads(fields[b"data"])
    assert int(fields[b"id"]) == event["position"]
    return int(fields[b"id"]), event


async def post_many(live: Live, count: int, writers: int = 3) -> None:
    """``count`` single POSTs from several concurrent writers, a little apart."""
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{live.port}", headers=live.auth
    ) as client:

        async def writer(n: int) -> None:
            for _ in range(n):
                response = await client.post("/v1/events", json=event_json())
                assert response.status_code == 201, response.text
                await asyncio.sleep(random.uniform(0, 0.01))

        await asyncio.gather(*(writer(count // writers) for _ in range(writers)))


async def _kill_and_resume(live: Live) -> None:
    rng = random.Random(7)
    writing = asyncio.create_task(post_many(live, 150))
    received: list[int] = []
    kills = 0
    while True:
        headers = {"accept": "text/event-stream"}
        if received:
            headers["last-event-id"] = str(received[-1])
        stream, status = await Stream.open(live, "/v1/events/stream", headers)
        assert status == 200
        wanted = rng.randint(5, 30)
        got = 0
        idle = False
        while got < wanted and not idle:
            assert await stream.more()
            for message in stream.messages():
                position, _ = parse(message)
                if position is None:
                    idle = writing.done()  # a heartbeat once the writers are done: caught up
                    continue
                received.append(position)
                got += 1
        stream.kill()
        kills += 1
        if idle:
            break
    await writing
    assert kills > 3
    assert received == list(range(1, 151))


async def test_a_killed_client_resumes_with_no_gap_and_no_duplicate(live: Live) -> None:
    """Writers keep appending while a client is killed mid-stream, again and again, and
    resumes each time with Last-Event-ID: it receives every event exactly once, in order."""
    await _kill_and_resume(live)


async def test_resuming_behind_a_small_buffer_reads_the_database_with_no_gap(
    settings: Settings, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a hub that keeps only 16 events in memory, a client resuming from older
    positions catches up from the database, then from the hub, and still receives every
    event exactly once, in order, while writers append."""
    monkeypatch.setattr(live_module, "BUFFER", 16)
    quick = settings.with_(stream_heartbeat=0.4, stream_poll=0.2, stream_stall=0.5)
    app = create_app(quick)
    async with served(app, quick) as port:
        assert app.state.services.live.capacity == 16
        await _kill_and_resume(Live(port, admin_key))


async def test_new_events_arrive_live_and_silence_brings_heartbeats(live: Live) -> None:
    """The SSE stream sends the events after its resume point, heartbeats while nothing happens,
    and an event appended later as it commits."""
    await post_many(live, 3, writers=1)
    stream, _ = await Stream.open(live, "/v1/events/stream?after=1", {})
    seen: list[int | None] = []
    while len([p for p in seen if p is None]) < 2:
        assert await stream.more()
        seen += [parse(m)[0] for m in stream.messages()]
    assert [p for p in seen if p is not None] == [2, 3]
    await post_many(live, 1, writers=1)
    while 4 not in seen:
        assert await stream.more(wait=2.0)
        seen += [parse(m)[0] for m in stream.messages()]
    stream.kill()


async def test_ndjson_and_filters(live: Live) -> None:
    """The stream as NDJSON, filtered by place, sends only that place's events in position
    order, with empty lines as heartbeats."""
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{live.port}", headers=live.auth
    ) as client:
        for n in range(6):
            place = "sy-raqqa" if n % 2 else "sy-maskanah"
            response = await client.post("/v1/events", json=at_place(place))
            assert response.status_code == 201
    stream, status = await Stream.open(
        live, "/v1/events/stream?place=sy-raqqa", {"accept": "application/x-ndjson"}
    )
    assert status == 200
    lines: list[dict[str, Any]] = []
    heartbeats = 0
    while heartbeats == 0:
        assert await stream.more()
        *whole, stream.buffer = stream.buffer.split(b"\n")
        for line in whole:
            if line:
                lines.append(json.loads(line))
            else:
                heartbeats += 1
    stream.kill()
    assert [e["position"] for e in lines] == [2, 4, 6]
    assert {e["place"] for e in lines} == {"sy-raqqa"}


async def test_a_client_that_stops_reading_is_cut_off_and_resumes(live: Live) -> None:
    """A client that stops reading does not make the server buffer the log for it: once a
    chunk waits longer than the stall limit, the stream ends; appends go on meanwhile; the
    client resumes after the last id it got and misses nothing."""
    stream, _ = await Stream.open(live, "/v1/events/stream", {}, rcvbuf=4096)
    big = "x" * 4000
    lines = [json.dumps(event_json(notes=big)) for _ in range(3000)]
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{live.port}", headers=live.auth, timeout=60
    ) as client:
        response = await client.post(
            "/v1/events",
            content="\n".join(lines).encode(),
            headers={"content-type": "application/x-ndjson"},
        )
        assert response.status_code == 201, response.text
        assert response.json()["accepted"] == 3000
    await asyncio.sleep(1.5)  # longer than the stall limit, not reading
    received: list[int] = []
    while await stream.more(wait=10.0):
        received += [p for p in (parse(m)[0] for m in stream.messages()) if p is not None]
    assert stream.ended, "the server should have closed the stream"
    stream.kill()
    assert 0 < len(received) < 3000
    assert received == list(range(1, len(received) + 1))
    again, _ = await Stream.open(live, "/v1/events/stream", {"last-event-id": str(received[-1])})
    while len(received) < 3000:
        assert await again.more()
        received += [p for p in (parse(m)[0] for m in again.messages()) if p is not None]
    again.kill()
    assert received == list(range(1, 3001))


async def test_bad_resume_points_are_422(client: AsyncTestClient[Litestar]) -> None:
    """A negative or oversized after, a Last-Event-ID that is not a position (text, negative, 20
    or 5,000 digits) and an unknown type are each a 422 naming the parameter."""
    assert_problem(await client.get("/v1/events/stream", params={"after": -1}), 422, "after")
    for resume in ("abc", "-1", "1" * 20, "9" * 5000):
        response = await client.get("/v1/events/stream", headers={"last-event-id": resume})
        assert_problem(response, 422, "last-event-id")
    assert_problem(await client.get("/v1/events/stream", params={"after": 10**20}), 422, "after")
    assert_problem(await client.get("/v1/events", params={"after": 10**20}), 422, "after")
    assert_problem(await client.get("/v1/events/stream", params={"type": "x"}), 422, "type")


async def test_one_database_reader_serves_every_stream(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 idle streams and a few commits cost the database about as many reads of the log as
    one stream would: one reader per process, its events fanned out to every stream, each
    of which receives each event once.

    Regression (issue 13): each stream polled the database itself (a read per stream per
    commit, and per second while idle): 1,000 idle streams cut writes from 204 to 59 a
    second."""
    reads = 0
    fetch = asyncpg.Pool.fetch

    async def counting(self: asyncpg.Pool, query: str, *args: Any, **kw: Any) -> Any:
        nonlocal reads
        if "FROM events\nWHERE position > $1" in query:
            reads += 1
        return await fetch(self, query, *args, **kw)

    monkeypatch.setattr(asyncpg.Pool, "fetch", counting)
    streams = [(await Stream.open(live, "/v1/events/stream", {}))[0] for _ in range(12)]
    reads = 0
    await asyncio.sleep(1.0)  # idle: 12 streams polling every 0.2 s made 60 reads
    idle_reads = reads
    await post_many(live, 5, writers=1)
    for stream in streams:
        got: list[int] = []
        while len(got) < 5:
            assert await stream.more()
            got += [p for p in (parse(m)[0] for m in stream.messages()) if p is not None]
        assert got == [1, 2, 3, 4, 5]
        stream.kill()
    assert idle_reads <= 8, idle_reads
    assert reads <= idle_reads + 15, reads


async def opening(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    """The answer to opening a stream: its body read only if it is not a stream (so an open
    stream fails the test instead of hanging it)."""
    async with client.stream("GET", "/v1/events/stream", headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
        return response


async def test_streams_are_capped_per_key_and_without_a_key(
    settings: Settings, admin_key: str
) -> None:
    """A key may hold FRONTLINE_STREAMS_PER_KEY streams (429 past it, with Retry-After), and
    clients without a key FRONTLINE_ANONYMOUS_STREAMS together (503 past it), each refusal
    logged as `excess_stream_limit_exceeded`; a stream that ends gives its place back."""
    capped = settings.with_(
        streams_per_key=2, anonymous_streams=2, anonymous_reads="true", stream_heartbeat=0.3
    )
    app = create_app(capped)
    async with served(app, capped) as port:
        keyed = Live(port, admin_key)
        anonymous = Live(port, "")
        first = [await Stream.open(keyed, "/v1/events/stream", {}) for _ in range(2)]
        assert [status for _, status in first] == [200, 200]
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}") as client:
            with capture_logs() as logs:
                over = await opening(client, keyed.auth)
            assert [line["event"] for line in logs if line["log_level"] == "warning"] == [
                "excess_stream_limit_exceeded"
            ]
            body = assert_problem(over, 429)
            assert "2 live streams" in body["detail"]
            assert int(over.headers["retry-after"]) >= 1
            none = [await Stream.open(anonymous, "/v1/events/stream", {}) for _ in range(2)]
            assert [status for _, status in none] == [200, 200]
            full = await opening(client, {})
            assert_problem(full, 503)
            assert int(full.headers["retry-after"]) >= 1
            first[0][0].kill()
            none[0][0].kill()
            hub = app.state.services.live
            for _ in range(50):  # the server notices the closed sockets
                if hub.open_streams == 2:
                    break
                await asyncio.sleep(0.1)
            assert hub.open_streams == 2
        again, status = await Stream.open(keyed, "/v1/events/stream", {})
        assert status == 200
        more, status = await Stream.open(anonymous, "/v1/events/stream", {})
        assert status == 200
        for stream in (again, more, first[1][0], none[1][0]):
            stream.kill()


async def test_live_filters_select_what_the_replay_selects(live: Live) -> None:
    """Streams opened before the writes, filtered by place, type and source, receive from
    the hub's memory exactly what GET /v1/events selects with the same filters."""
    filters = [
        "place=sy-raqqa",
        "type=capture",
        "source=south%20front",
        "place=sy-raqqa&type=clash",
    ]
    streams = [(await Stream.open(live, f"/v1/events/stream?{query}", {}))[0] for query in filters]
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{live.port}", headers=live.auth
    ) as client:
        for n in range(12):
            event = at_place("sy-raqqa" if n % 3 else "sy-maskanah")
            event["type"] = "capture" if n % 2 else "clash"
            event["source"]["name"] = "South  Front" if n % 4 == 0 else "Reuters"
            response = await client.post("/v1/events", json=event)
            assert response.status_code == 201, response.text
        for query, stream in zip(filters, streams, strict=True):
            expected = [
                e["position"] for e in (await client.get(f"/v1/events?{query}")).json()["events"]
            ]
            assert expected, query
            got: list[int] = []
            while len(got) < len(expected):
                assert await stream.more()
                got += [p for p in (parse(m)[0] for m in stream.messages()) if p is not None]
            assert got == expected, query
            stream.kill()


async def test_streams_behind_the_buffer_catch_up_a_few_at_a_time(
    settings: Settings, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streams opened from position 0 each replay the log from the database, at most
    CATCH_UP of them reading at once (a hundred anonymous replays must not queue every
    other request behind them), sharing the full pages one of them read, and each gets it
    all, in order."""
    reading = most = reads = 0
    page = EventStore.page

    async def counted(self: EventStore, *args: Any, **kw: Any) -> Any:
        nonlocal reading, most, reads
        reads += 1
        reading += 1
        most = max(most, reading)
        try:
            await asyncio.sleep(0.01)  # long enough for the others to pile up
            return await page(self, *args, **kw)
        finally:
            reading -= 1

    monkeypatch.setattr(EventStore, "page", counted)
    quick = settings.with_(stream_heartbeat=0.4, stream_poll=0.2)
    async with served(create_app(quick), quick) as port:
        live = Live(port, admin_key)
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", headers=live.auth) as client:
            lines = "\n".join(json.dumps(event_json()) for _ in range(1200))
            response = await client.post(
                "/v1/events", content=lines, headers={"content-type": "application/x-ndjson"}
            )
            assert response.json()["accepted"] == 1200
        # The hub starts with the first stream, at the log's head: all six replay from the
        # database, three pages each.
        streams = [(await Stream.open(live, "/v1/events/stream", {}))[0] for _ in range(6)]
        for stream in streams:
            got: list[int] = []
            while len(got) < 1200:
                assert await stream.more()
                got += [p for p in (parse(m)[0] for m in stream.messages()) if p is not None]
            assert got == list(range(1, 1201))
            stream.kill()
    assert most == live_module.CATCH_UP
    # Two full pages and a last one each: 18 reads alone; the full pages are shared.
    assert reads <= 2 * live_module.CATCH_UP + 6, reads
