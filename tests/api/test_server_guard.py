"""`frontline serve`'s connection guard (service/server.py) on a real socket: a request head
bounded in size (431) and in time (408), connections capped (the longest-waiting one closed
to make room, 503 when every one is busy), each kind of shed load logged; and a client that
sends part of a body and leaves, logged as its own abort (499), never as a server error."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from service import server as server_module
from service.app import create_app
from service.settings import Settings
from tests.api.conftest import HOST, served
from tests.payloads import event_json


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, port)


async def answer_of(reader: asyncio.StreamReader, wait: float = 5.0) -> tuple[int, bytes] | None:
    """(status, body) of the answer on ``reader``; None when the server closed without one."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    status = int(head.split(b" ", 2)[1])
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    body = await reader.readexactly(length) if length else b""
    return status, body


async def closed(reader: asyncio.StreamReader, wait: float) -> bool:
    """Whether the server closes the connection within ``wait`` seconds (reading on)."""
    try:
        async with asyncio.timeout(wait):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


def events_of(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [line for line in logs if line["event"] == name]


async def test_a_request_head_over_its_limits_is_431_and_the_server_serves_on(
    settings: Settings, admin_key: str
) -> None:
    """A head over FRONTLINE_MAX_HEADER_BYTES, or a header line over
    FRONTLINE_MAX_HEADER_LINE, is answered 431 with a problem naming the headers (a request
    line over it: 414, naming the path), before the app sees it; a 10 MB Authorization
    header is cut off after at most one read, logged as `excess_header_size_exceeded`; a
    request within the limits is served as before.

    Regression (issue 13): uvicorn took headers of any size; 100 requests carrying a 10 MB
    key grew the process from 249 to 1,222 MiB."""
    small = settings.with_(max_header_bytes=4096, max_header_line=1024)
    async with served(create_app(small), small) as port:
        with capture_logs() as logs:
            many = "".join(f"x-filler-{n}: {'y' * 200}\r\n" for n in range(30))  # 6.5 kB
            reader, writer = await connect(port)
            writer.write(f"GET /v1/events HTTP/1.1\r\nhost: x\r\n{many}\r\n".encode())
            answer = await answer_of(reader)
            assert answer is not None
            assert answer[0] == 431
            assert b'"field":"headers"' in answer[1]
            writer.close()

            reader, writer = await connect(port)
            writer.write(f"GET /v1/events?place={'p' * 1100} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
            answer = await answer_of(reader)
            assert answer is not None
            assert answer[0] == 414  # the request line: URI too long
            assert b'"field":"path"' in answer[1]
            writer.close()

            reader, writer = await connect(port)
            line = f"authorization: Bearer flk_{'a' * 1500}\r\n"  # one line over 1,024 bytes
            writer.write(f"GET /v1/events HTTP/1.1\r\nhost: x\r\n{line}\r\n".encode())
            answer = await answer_of(reader)
            assert answer is not None
            assert answer[0] == 431
            writer.close()

            reader, writer = await connect(port)
            writer.write(b"GET /v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer flk_")
            sent = 0
            try:
                for _ in range(160):  # 10 MiB in 64 KiB pieces
                    writer.write(b"a" * 65536)
                    await writer.drain()
                    sent += 65536
            except ConnectionError:
                pass  # the server answered and closed long before the end
            assert sent < 10 * 2**20 or await closed(reader, 5.0)
            writer.close()
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}") as client:
            fine = await client.get(
                "/v1/events",
                headers={"authorization": f"Bearer {admin_key}", "x-note": "n" * 900},
            )
            assert fine.status_code == 200
    shed = events_of(logs, "excess_header_size_exceeded")
    assert shed
    assert sum(line["refused"] for line in shed) >= 1
    assert admin_key not in repr(logs)


async def test_a_head_that_trickles_in_is_cut_at_the_header_timeout(settings: Settings) -> None:
    """A client sending a header line every 0.2 s gets 408 and is closed once
    FRONTLINE_HEADER_TIMEOUT (0.6 s here) has passed since it connected, however regularly it
    sends; a client that sends nothing is closed at the same time; both are logged as
    `excess_header_time_exceeded`. A request that is quick is served as before.

    Regression (issue 13): uvicorn's keep-alive timeout restarts on every byte, so 20,000
    such clients held 20,000 connections until the file limit refused everyone else."""
    quick = settings.with_(header_timeout=0.6)
    async with served(create_app(quick), quick) as port:
        with capture_logs() as logs:
            silent_reader, silent_writer = await connect(port)
            reader, writer = await connect(port)
            started = time.monotonic()
            writer.write(b"GET /health HTTP/1.1\r\nhost: x\r\n")
            answering = asyncio.create_task(answer_of(reader, wait=5.0))
            n = 0
            while not answering.done():  # a header line every 0.2 s, until the answer
                await asyncio.sleep(0.2)
                n += 1
                try:
                    writer.write(f"x-slow-{n}: 1\r\n".encode())
                    await writer.drain()
                except ConnectionError:
                    break
            answer = await answering
            elapsed = time.monotonic() - started
            assert answer is not None
            assert answer[0] == 408
            assert elapsed < 3.0
            assert await closed(silent_reader, 2.0)
            writer.close()
            silent_writer.close()
            async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}") as client:
                assert (await client.get("/health")).status_code == 200
            await asyncio.sleep(1.1)  # the guard logs each kind at most once a second
    slow = events_of(logs, "excess_header_time_exceeded")
    assert sum(line.get("closed_partial", 0) for line in slow) >= 1
    assert sum(line.get("closed_silent", 0) for line in slow) >= 1


async def test_at_the_connection_cap_the_longest_waiting_client_makes_room(
    settings: Settings, admin_key: str
) -> None:
    """With FRONTLINE_MAX_CONNECTIONS open, a new connection closes the one that has waited
    longest for its request head, so slow clients never lock others out; when every
    connection is busy with a request (here: live streams), the new one gets 503. Both are
    logged as `excess_connection_limit_exceeded`."""
    capped = settings.with_(max_connections=6, header_timeout=30.0)
    async with served(create_app(capped), capped) as port:
        with capture_logs() as logs:
            slow = [await connect(port) for _ in range(6)]
            for _, writer in slow:
                writer.write(b"GET /health HTTP/1.1\r\n")
            await asyncio.sleep(0.2)
            async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}") as client:
                for _ in range(3):
                    assert (await client.get("/health")).status_code == 200
            assert await closed(slow[0][0], 2.0), "the longest-waiting client stays open"
            for _, writer in slow:
                writer.close()
            await asyncio.sleep(0.2)

            streams = []
            for _ in range(6):
                reader, writer = await connect(port)
                writer.write(
                    b"GET /v1/events/stream HTTP/1.1\r\nhost: x\r\n"
                    b"authorization: Bearer " + admin_key.encode() + b"\r\n\r\n"
                )
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                assert head.startswith(b"HTTP/1.1 200")
                streams.append((reader, writer))
            reader, writer = await connect(port)
            answer = await answer_of(reader)
            writer.close()
            assert answer is not None
            assert answer[0] == 503
            for _, stream_writer in streams:
                stream_writer.close()
            await asyncio.sleep(1.1)  # the guard logs each kind at most once a second
    shed = events_of(logs, "excess_connection_limit_exceeded")
    assert sum(line.get("closed_waiting", 0) for line in shed) >= 1
    assert sum(line.get("refused", 0) for line in shed) >= 1
    assert all(line["limit"] == 6 for line in shed)


async def test_a_client_that_sends_part_of_a_body_and_leaves_is_its_abort(
    settings: Settings, admin_key: str
) -> None:
    """A POST whose client sends part of its body and closes is logged with status 499 and a
    `client_abort` line, counted under 499 in /metrics, and never as a 500: no
    `unhandled_error`, no 500 in the log or the metrics. The same for an NDJSON import.

    Regression (issue 13): logged as a 500 with no error line, counted as a server error."""
    async with served(create_app(settings), settings) as port:
        body = ('{"events": [' + ",".join([json.dumps(event_json())] * 5)).encode()
        with capture_logs() as logs:
            for content_type in ("application/json", "application/x-ndjson"):
                _, writer = await connect(port)
                writer.write(
                    b"POST /v1/events HTTP/1.1\r\nhost: x\r\n"
                    b"authorization: Bearer " + admin_key.encode() + b"\r\n"
                    b"content-type: " + content_type.encode() + b"\r\n"
                    b"content-length: %d\r\n\r\n" % (len(body) * 10) + body
                )
                await writer.drain()
                await asyncio.sleep(0.3)
                writer.close()
                await writer.wait_closed()
            for _ in range(50):
                if len(events_of(logs, "client_abort")) == 2:
                    break
                await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}") as client:
            metrics = (await client.get("/metrics")).text
    assert len(events_of(logs, "client_abort")) == 2
    requests = [line for line in events_of(logs, "request") if line["path"] == "/v1/events"]
    assert [line["status"] for line in requests] == [499, 499]
    assert not events_of(logs, "unhandled_error")
    assert 'route="/v1/events",status="499"} 2' in metrics
    assert 'status="500"' not in metrics


async def test_stopping_the_server_ends_live_streams_after_a_grace(
    settings: Settings, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn stops only once every connection has closed, and a live stream never closes
    by itself: when the server stops, a stream still open after the grace (0.5 s here) is
    ended, so SIGTERM stops `frontline serve` promptly with streams open."""
    monkeypatch.setattr(server_module, "SHUTDOWN_GRACE", 0.5)
    async with served(create_app(settings), settings) as port:
        reader, writer = await connect(port)
        writer.write(
            b"GET /v1/events/stream HTTP/1.1\r\nhost: x\r\n"
            b"authorization: Bearer " + admin_key.encode() + b"\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 3.0
    assert await closed(reader, 1.0)
    writer.close()
