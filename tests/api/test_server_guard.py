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
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
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
    assert 'route="/v1/events",status="499"} 2.0' in metrics
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


# --- pipelined requests: the next head is counted from the end of a message, whatever the
# answers are doing, and timed only while no answer is owed ---


def delaying(app: ASGIApp) -> ASGIApp:
    """``app`` behind a wrapper that holds a request carrying `x-test-delay: s` for s seconds
    before the app sees it: a slow answer on demand (the app itself is the real one)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            delay = dict(scope["headers"]).get(b"x-test-delay")
            if delay is not None:
                await asyncio.sleep(float(delay))
        await app(scope, receive, send)

    return wrapped


def oversized_head(path: str = "/v1/events") -> bytes:
    """A request whose head carries 2.5 MB of headers, in lines under the line limit."""
    filler = b"".join(b"x-filler-%d: %s\r\n" % (n, b"y" * 900) for n in range(2700))
    return b"GET " + path.encode() + b" HTTP/1.1\r\nhost: x\r\n" + filler + b"\r\n"


async def send_all(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write ``data``, tolerating a server that answers and closes before the end."""
    try:
        writer.write(data)
        await writer.drain()
    except ConnectionError:
        pass


async def stream_head(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


async def test_a_head_pipelined_behind_an_answer_is_bounded_like_any_other(
    settings: Settings, admin_key: str
) -> None:
    """A request head pipelined behind a request still being answered is counted as it
    arrives: over FRONTLINE_MAX_HEADER_BYTES it is refused before the parser or the app sees
    it. Behind a slow answer: that answer first, then 431, then the connection closes. Behind
    a live stream (an answer that never ends, after which a 431 cannot be written): the
    stream is ended within FRONTLINE_HEADER_TIMEOUT and the connection closed. Right after a
    chunked body, in the same packet: the body's request answered, then 431.

    Regression (review of issue 13's guard): the guard counted only while no answer was
    owed, so 2.5 MB of headers behind `GET /slow` got 200, and behind a live stream any
    amount went to httptools, unbounded and unlimited in time."""
    small = settings.with_(max_header_bytes=4096, max_header_line=1024, header_timeout=0.6)
    auth = b"authorization: Bearer " + admin_key.encode() + b"\r\n"
    async with served(delaying(create_app(small)), small) as port:
        with capture_logs() as logs:
            reader, writer = await connect(port)
            slow = b"GET /health HTTP/1.1\r\nhost: x\r\nx-test-delay: 0.3\r\n\r\n"
            await send_all(writer, slow + oversized_head())
            assert await answer_of(reader) == (200, b'{"status":"ok"}')
            refused = await answer_of(reader)
            assert refused is not None
            assert refused[0] == 431
            assert await closed(reader, 2.0)
            writer.close()

            reader, writer = await connect(port)
            stream = b"GET /v1/events/stream HTTP/1.1\r\nhost: x\r\n" + auth + b"\r\n"
            started = time.monotonic()
            await send_all(writer, stream + oversized_head("/v1/events?limit=1"))
            assert (await stream_head(reader)).startswith(b"HTTP/1.1 200")
            assert await closed(reader, 3.0)
            assert time.monotonic() - started < 3.0
            writer.close()

            reader, writer = await connect(port)
            body = json.dumps({"events": [event_json()]}).encode()
            chunked = (
                b"POST /v1/events HTTP/1.1\r\nhost: x\r\n" + auth + b"content-type: "
                b"application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
            )
            await send_all(writer, chunked + oversized_head("/v1/events?limit=2"))
            posted = await answer_of(reader)
            assert posted is not None
            assert posted[0] == 201, posted
            refused = await answer_of(reader)
            assert refused is not None
            assert refused[0] == 431
            writer.close()
            await asyncio.sleep(1.1)  # the guard logs each kind at most once a second
    seen = [(line["method"], line["path"]) for line in events_of(logs, "request")]
    assert ("GET", "/v1/events") not in seen, "the app saw a refused head"
    assert ("POST", "/v1/events") in seen
    shed = events_of(logs, "excess_header_size_exceeded")
    assert sum(line.get("refused", 0) for line in shed) == 3
    assert sum(line.get("closed_behind_answer", 0) for line in shed) == 1


async def test_pipelined_requests_are_each_answered_whatever_the_header_timeout(
    settings: Settings, admin_key: str
) -> None:
    """Requests pipelined in one write are each answered, in order, however long the later
    answers take: the header timeout (0.5 s here) runs only while no answer is owed. A live
    stream pipelined behind a quick request stays open past it.

    Regression (review of issue 13's guard): once the first answer was out, the guard armed
    the head timer although uvicorn had just started the next request, so a pipelined slow
    request was cut (`closed_silent`) and never answered."""
    quick = settings.with_(header_timeout=0.5)
    async with served(delaying(create_app(quick)), quick) as port:
        with capture_logs() as logs:
            reader, writer = await connect(port)
            fast = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"
            slow = b"GET /health HTTP/1.1\r\nhost: x\r\nx-test-delay: 1.0\r\n\r\n"
            await send_all(writer, fast + slow + fast)
            for _ in range(3):
                assert await answer_of(reader) == (200, b'{"status":"ok"}')
            writer.close()

            reader, writer = await connect(port)
            stream = (
                b"GET /v1/events/stream HTTP/1.1\r\nhost: x\r\n"
                b"authorization: Bearer " + admin_key.encode() + b"\r\n\r\n"
            )
            await send_all(writer, fast + stream)
            assert await answer_of(reader) == (200, b'{"status":"ok"}')
            assert (await stream_head(reader)).startswith(b"HTTP/1.1 200")
            assert not await closed(reader, 1.5), "the stream was cut by the header timeout"
            writer.close()
            await asyncio.sleep(1.1)
    assert not events_of(logs, "excess_header_time_exceeded")


async def test_a_pipelined_body_is_never_counted_as_a_head(
    settings: Settings, admin_key: str
) -> None:
    """A POST pipelined behind another request, whose body (Content-Length or chunked, larger
    than FRONTLINE_MAX_HEADER_BYTES) arrives after the first answer, is read by the app and
    answered by it (201), never refused by the guard as if its body were a head; a request
    pipelined after that body is answered too.

    Regression (review of issue 13's guard): after the first answer the guard counted
    whatever arrived next as a head, so the POST's body got 431."""
    small = settings.with_(max_header_bytes=4096, max_header_line=1024)
    auth = b"authorization: Bearer " + admin_key.encode() + b"\r\n"
    events = [event_json(id=None, quote=f"report {n} " + "q" * 300) for n in range(20)]
    body = json.dumps({"events": events}).encode()
    assert len(body) > 3 * 4096
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[at : at + 3000]), body[at : at + 3000])
        for at in range(0, len(body), 3000)
    )
    framings = [
        (b"content-length: %d\r\n" % len(body), body),
        (b"transfer-encoding: chunked\r\n", chunks + b"0\r\n\r\n"),
    ]
    async with served(create_app(small), small) as port:
        with capture_logs() as logs:
            for framing, payload in framings:
                reader, writer = await connect(port)
                head = (
                    b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"
                    b"POST /v1/events HTTP/1.1\r\nhost: x\r\n" + auth + framing + b"content-type: "
                    b"application/json\r\n\r\n"
                )
                await send_all(writer, head + payload[:1000])
                assert await answer_of(reader) == (200, b'{"status":"ok"}')
                await asyncio.sleep(0.2)  # the POST is being read
                await send_all(writer, payload[1000:] + b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
                posted = await answer_of(reader)
                assert posted is not None
                assert posted[0] == 201, posted
                assert len(json.loads(posted[1])["receipts"]) == 20
                assert await answer_of(reader) == (200, b'{"status":"ok"}')
                writer.close()
    assert not events_of(logs, "excess_header_size_exceeded")


async def test_the_head_timeout_still_closes_an_idle_keep_alive_connection(
    settings: Settings,
) -> None:
    """Once every answer is out, the connection has FRONTLINE_HEADER_TIMEOUT (0.5 s here) to
    send its next head, as when it opened: idle, it is closed (`closed_silent`); a head
    begun and not finished gets 408; both after a pipelined pair as after one request."""
    quick = settings.with_(header_timeout=0.5)
    async with served(create_app(quick), quick) as port:
        with capture_logs() as logs:
            get = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"
            for sent in (get, get + get):
                reader, writer = await connect(port)
                await send_all(writer, sent)
                for _ in range(sent.count(b"GET")):
                    assert await answer_of(reader) == (200, b'{"status":"ok"}')
                started = time.monotonic()
                assert await closed(reader, 3.0)
                assert 0.3 < time.monotonic() - started < 2.0
                writer.close()

            reader, writer = await connect(port)
            await send_all(writer, get + b"GET /health HTTP/1.1\r\n")
            assert await answer_of(reader) == (200, b'{"status":"ok"}')
            late = await answer_of(reader, wait=3.0)
            assert late is not None
            assert late[0] == 408
            writer.close()
            await asyncio.sleep(1.1)
    slow = events_of(logs, "excess_header_time_exceeded")
    assert sum(line.get("closed_silent", 0) for line in slow) == 2
    assert sum(line.get("closed_partial", 0) for line in slow) == 1


async def test_a_live_stream_with_a_request_pipelined_behind_it_ends_when_its_client_leaves(
    settings: Settings,
) -> None:
    """A client that opens an anonymous live stream with another request pipelined behind
    it, then leaves, gives the stream's place back (the next anonymous stream is 200 under
    FRONTLINE_ANONYMOUS_STREAMS=1), and the server still stops promptly.

    Regression (found while fixing the guard's pipelining): uvicorn tells only the last
    request read that its client left, not the one being answered, so the stream ran on
    for ever, holding an anonymous place and keeping the server from stopping."""
    one = settings.with_(anonymous_reads="true", anonymous_streams=1, stream_heartbeat=0.3)
    app = create_app(one)
    stream = b"GET /v1/events/stream HTTP/1.1\r\nhost: x\r\n\r\n"
    async with asyncio.timeout(30), served(app, one) as port:  # a leaked stream: no stop
        reader, writer = await connect(port)
        await send_all(writer, stream + b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        assert (await stream_head(reader)).startswith(b"HTTP/1.1 200")
        writer.close()
        hub = app.state.services.live
        for _ in range(30):
            if hub.open_streams == 0:
                break
            await asyncio.sleep(0.1)
        assert hub.open_streams == 0, "the stream outlived its client"
        reader, writer = await connect(port)
        await send_all(writer, stream)
        assert (await stream_head(reader)).startswith(b"HTTP/1.1 200")
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 8.0
    writer.close()
