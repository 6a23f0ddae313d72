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

import httpx
import pytest
import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import assert_problem
from tests.payloads import at_place, event_json

HOST = "127.0.0.1"


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
    app = create_app(settings.with_(stream_heartbeat=0.4, stream_poll=0.2, stream_stall=0.5))
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host=HOST, port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.02)
    yield Live(port, admin_key)
    server.should_exit = True
    await task


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


async def test_a_killed_client_resumes_with_no_gap_and_no_duplicate(live: Live) -> None:
    """Writers keep appending while a client is killed mid-stream, again and again, and
    resumes each time with Last-Event-ID: it receives every event exactly once, in order."""
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


async def test_new_events_arrive_live_and_silence_brings_heartbeats(live: Live) -> None:
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
        assert response.status_code == 200, response.text
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
    assert_problem(await client.get("/v1/events/stream", params={"after": -1}), 422, "after")
    for resume in ("abc", "-1", "1" * 20, "9" * 5000):
        response = await client.get("/v1/events/stream", headers={"last-event-id": resume})
        assert_problem(response, 422, "last-event-id")
    assert_problem(await client.get("/v1/events/stream", params={"after": 10**20}), 422, "after")
    assert_problem(await client.get("/v1/events", params={"after": 10**20}), 422, "after")
    assert_problem(await client.get("/v1/events/stream", params={"type": "x"}), 422, "type")
