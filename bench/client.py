"""A lean HTTP/1.1 load client on asyncio streams.

httpx would spend more CPU than the servers it measures on this 2-core machine; these few
functions do only what the benchmarks need: keep-alive POSTs with pre-encoded bodies, a
chunked upload of a file, and a chunked download counted line by line.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

CHUNK: Final = 1 << 20
"""Bytes per chunk of an upload, and the stream reader's buffer limit."""


AUTH: str = ""
"""An ``Authorization`` header line (with its CRLF) for every request; the runners set it
once they have put a key into the service's database (``bench.servers.grant_key``)."""


@dataclass(slots=True)
class Response:
    """Status and body of one response."""

    status: int
    body: bytes


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_response(reader: asyncio.StreamReader) -> Response:
    """One whole response (Content-Length or chunked; none for 204 and 304)."""
    status, headers = await _read_head(reader)
    if status in (204, 304):
        return Response(status, b"")
    length = headers.get(b"content-length")
    if length is not None:
        return Response(status, await reader.readexactly(int(length)))
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return Response(status, b"".join(parts))
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    return Response(status, await reader.read())


@dataclass(slots=True)
class LoadResult:
    """What a run of single-event POSTs measured."""

    requests: int
    seconds: float
    latencies: list[float]
    statuses: Counter[int] = field(default_factory=Counter)
    sample_error: bytes = b""

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        """A latency percentile, in seconds (nearest rank)."""
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index]


async def post_load(
    host: str,
    port: int,
    path: str,
    bodies: Sequence[bytes],
    connections: int,
    rate: float | None = None,
) -> LoadResult:
    """POST each body once, from ``connections`` keep-alive connections, each one at a time;
    with ``rate``, body ``i`` is sent no earlier than ``i / rate`` seconds after the start."""
    pending = iter(enumerate(bodies))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: list[bytes] = []
    prefix = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{AUTH}Content-Type: application/json\r\n"
    ).encode()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port, limit=CHUNK)
        try:
            for index, body in pending:
                if rate is not None:
                    delay = begun + index / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                started = time.perf_counter()
                writer.write(prefix + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                response = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[response.status] += 1
                if response.status >= 300 and not errors:
                    errors.append(response.body[:500])
        finally:
            writer.close()

    begun = started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    seconds = time.perf_counter() - started
    return LoadResult(len(bodies), seconds, latencies, statuses, errors[0] if errors else b"")


async def upload(host: str, port: int, path: str, file: Path, content_type: str) -> Response:
    """POST a file as a chunked body; the response once the server has read it all."""
    reader, writer = await asyncio.open_connection(host, port, limit=CHUNK)
    try:
        writer.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{AUTH}"
                f"Content-Type: {content_type}\r\n"
                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            ).encode()
        )
        with file.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                writer.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return await read_response(reader)
    finally:
        writer.close()


@dataclass(slots=True)
class Download:
    """What a streamed GET delivered."""

    status: int
    lines: int
    bytes: int
    first_byte: float
    seconds: float


async def download_lines(host: str, port: int, target: str, accept: str) -> Download:
    """GET ``target`` and read the (chunked) body to its end, counting lines and bytes."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port, limit=CHUNK)
    try:
        writer.write(
            (
                f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n{AUTH}Accept: {accept}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
        )
        status, headers = await _read_head(reader)
        first_byte = time.perf_counter() - started
        lines = size = 0
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            body = await reader.read()
            return Download(status, body.count(b"\n"), len(body), first_byte, first_byte)
        while True:
            chunk_size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if chunk_size == 0:
                await reader.readuntil(b"\r\n")
                break
            data = await reader.readexactly(chunk_size)
            await reader.readexactly(2)
            lines += data.count(b"\n")
            size += chunk_size
        return Download(status, lines, size, first_byte, time.perf_counter() - started)
    finally:
        writer.close()
