"""How an NDJSON body is cut into lines: in time and memory linear in its size.

A line spread over many chunks used to be re-copied whole with each new chunk (a 64 MiB line
took 11 s against 0.6 s for 16 MiB); a line over FRONTLINE_MAX_LINE is now dropped as it
comes, never held (figures in docs/reliability.md).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import AsyncIterator

from service.usecases.ingest import LineTooLong, split_lines

MIB = 1024 * 1024


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_long_line_costs_its_length_not_its_length_times_its_chunks() -> None:
    """An 8 MiB line arriving in 4 KiB chunks (2,048 of them) is joined in well under a
    second: copying it again for every chunk, as before, took seconds."""
    line = b"x" * (8 * MIB)
    started = time.perf_counter()
    lines = [item async for item in split_lines(_chunks(line + b"\nlast\n", 4096))]
    elapsed = time.perf_counter() - started
    assert [(n, len(x) if isinstance(x, bytes) else x) for n, x in lines] == [
        (1, 8 * MIB),
        (2, 4),
    ]
    assert elapsed < 0.5, f"{elapsed:.2f} s"


async def test_a_line_over_the_limit_is_dropped_as_it_comes() -> None:
    """A 64 MiB line against a 1 MiB limit is given as LineTooLong (its length and the
    limit) under its number, without ever being held: the split holds little more than one
    chunk and the limit, and the lines after it keep their numbers."""

    async def body() -> AsyncIterator[bytes]:
        yield b"first\n"
        chunk = b"y" * (64 * 1024)
        for _ in range(1024):  # 64 MiB, never in memory at once
            yield chunk
        yield b"\n\nthird\n"

    tracemalloc.start()
    try:
        lines = [item async for item in split_lines(body(), MIB)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == [(1, b"first"), (2, LineTooLong(64 * MIB, MIB)), (4, b"third")]
    assert peak < 3 * MIB, f"peak {peak / MIB:.1f} MiB"


async def test_lines_at_and_over_the_limit_in_one_chunk() -> None:
    """The limit is exact, for lines inside one chunk, across chunks and at the end."""
    data = b"aaaa\nbbbbb\n\n" + b"cc" + b"cc" + b"\nddddd"
    lines = [item async for item in split_lines(_chunks(data, 3), 4)]
    assert lines == [
        (1, b"aaaa"),
        (2, LineTooLong(5, 4)),
        (4, b"cccc"),
        (5, LineTooLong(5, 4)),
    ]
