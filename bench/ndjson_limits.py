"""NDJSON imports against a served instance: what a hostile body costs the server.

Two bodies an ingest key can send to ``POST /v1/events`` as ``application/x-ndjson``:

* many lines of ``{}`` (each a rejected line): the answer's size, the server's memory;
* one long line: the time to read it (a line spread over many chunks must not be copied
  again with every chunk, or the time grows with the square of its length).

Each body goes to a fresh ``frontline serve`` (uvicorn, as shipped) on its own database,
sent as a chunked upload in 1 MiB chunks; memory is the server process's resident set
(``VmRSS``) before and after, and its peak (``VmHWM``), from ``/proc``::

    python -m bench.ndjson_limits                       # the defaults below, as shipped
    python -m bench.ndjson_limits --max-line 134217728  # long lines allowed: the split alone

The figures are in docs/reliability.md ("NDJSON limits").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench import client
from bench.servers import FRONTLINE, ServerProcess, check_database, free_port, grant_key, memory_mib

MIB: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Run:
    """One body sent to a fresh server."""

    body: str
    status: int
    answer_bytes: int
    seconds: float
    rss_before_mib: float
    rss_after_mib: float
    peak_mib: float
    summary: str


def _summary(status: int, body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return body[:120].decode(errors="replace")
    if status not in (200, 201):
        return f"{answer.get('title')}: {str(answer.get('detail'))[:100]}"
    errors = answer.get("errors", [])
    first = errors[0]["reason"][:90] if errors else ""
    return (
        f"accepted {answer['accepted']}, rejected {answer['rejected']}, "
        f"listed {len(errors)}; first: {first}"
    )


async def _send(url: str, folder: Path, name: str, file: Path, env: dict[str, str]) -> Run:
    port = free_port()
    service = ServerProcess(
        name="service",
        command=[*FRONTLINE, "serve", "--port", str(port)],
        env={"DATABASE_URL": url, "FRONTLINE_LOG_FORMAT": "json", **env},
        log_path=folder / f"service-{name}.log",
        port=port,
        ready_path="/ready",
    )
    service.start()
    try:
        before = memory_mib(service.pid)
        started = time.perf_counter()
        response = await client.upload(
            "127.0.0.1", port, "/v1/events", file, "application/x-ndjson"
        )
        seconds = time.perf_counter() - started
        after = memory_mib(service.pid)
    finally:
        service.stop()
    return Run(
        body=name,
        status=response.status,
        answer_bytes=len(response.body),
        seconds=seconds,
        rss_before_mib=before["VmRSS"],
        rss_after_mib=after["VmRSS"],
        peak_mib=after["VmHWM"],
        summary=_summary(response.status, response.body),
    )


def _bodies(folder: Path, lines: int, long_mib: list[int]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    empty = folder / "empty-objects.ndjson"
    empty.write_bytes(b"{}\n" * lines)
    files[f"{lines:,} lines of {{}} ({empty.stat().st_size / MIB:.1f} MiB)"] = empty
    for size in long_mib:
        long = folder / f"line-{size}.ndjson"
        with long.open("wb") as out:
            out.write(b'{"notes":"')
            block = b"x" * MIB
            for _ in range(size):
                out.write(block)
            out.write(b'"}\n')
        files[f"one line of {size} MiB"] = long
    return files


async def main(lines: int, long_mib: list[int], env: dict[str, str]) -> None:
    with check_database("frontline-ndjson-") as (url, folder):
        key = "flk_bench_" + uuid.uuid4().hex
        await grant_key(url, key)
        client.AUTH = f"Authorization: Bearer {key}\r\n"
        with tempfile.TemporaryDirectory(prefix="frontline-ndjson-bodies-") as scratch:
            for name, file in _bodies(Path(scratch), lines, long_mib).items():
                run = await _send(url, folder, name, file, env)
                print(
                    f"{run.body}: {run.status} in {run.seconds:.2f} s, answer "
                    f"{run.answer_bytes / MIB:.2f} MiB ({run.answer_bytes:,} bytes); server RSS "
                    f"{run.rss_before_mib:.0f} -> {run.rss_after_mib:.0f} MiB "
                    f"(+{run.rss_after_mib - run.rss_before_mib:.0f}), peak {run.peak_mib:.0f} "
                    f"MiB; {run.summary}",
                    flush=True,
                )


def cli() -> None:
    """Parse arguments, run, print one line per body."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines of {} (1000000)")
    parser.add_argument(
        "--long", default="16,64", help="sizes in MiB of the single long lines (16,64)"
    )
    parser.add_argument("--max-line", type=int, help="FRONTLINE_MAX_LINE for the server")
    args = parser.parse_args()
    env = {"FRONTLINE_MAX_LINE": str(args.max_line)} if args.max_line else {}
    asyncio.run(main(args.lines, [int(s) for s in args.long.split(",") if s], env))


if __name__ == "__main__":
    cli()
