"""What ``verify`` costs with each ``projections`` mode (issue 13), next to a rebuild.

The benchmark workload (``bench/workload.py``, the one ``bench.front`` imports) is imported
into a fresh database with the projections kept in each commit, as the service does
(NDJSON chunks of ``FRONTLINE_IMPORT_CHUNK`` events); then ``AuditReader.verify`` of the
whole log runs with ``projections=off`` (the chain and the links), ``sample`` (plus places
picked at random up to ``--sample`` events) and ``full`` (plus every place), best of
``--rounds`` each, and a full rebuild of the projections (``TimelineProjector.rebuild``)
for comparison: ``full`` refolds what a rebuild refolds, and writes nothing.

    python -m bench.verify                      # 100,000 events (about 2 min)
    python -m bench.verify --scale 20000 --rounds 1

Results go to ``bench/out/verify-<time>.json``; a markdown table is printed. See
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from bench.run import OUT, machine_info, source_revision
from bench.servers import EmbeddedPostgres, recreate_database
from bench.workload import Workload
from service.projections.timelines import TimelineProjector
from service.settings import Settings
from service.store import migrate
from service.store.audit import AuditReader, ProjectionMode
from service.store.db import Connector, create_pool
from service.store.events import EventStore
from service.usecases.ingest import import_ndjson, split_lines

DATABASE: Final = "frontline_bench_verify"
ORDER: Final[tuple[ProjectionMode, ...]] = ("off", "sample", "full")
CHUNK: Final = 10_000


def parser() -> argparse.ArgumentParser:
    """The command line."""
    args = argparse.ArgumentParser(
        prog="python -m bench.verify", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    args.add_argument("--scale", type=int, default=100_000, help="events imported")
    args.add_argument("--sample", type=int, default=10_000, help="FRONTLINE_VERIFY_SAMPLE")
    args.add_argument("--rounds", type=int, default=3, help="rounds of each mode (best kept)")
    args.add_argument("--seed", type=int, default=1, help="the workload's seed")
    args.add_argument("--out", type=Path, default=OUT, help="where results go")
    return args


async def _lines(workload: Workload, count: int) -> AsyncIterator[bytes]:
    batch: list[bytes] = []
    for line in workload.lines(count):
        batch.append(line if line.endswith(b"\n") else line + b"\n")
        if len(batch) == 1000:
            yield b"".join(batch)
            batch = []
    if batch:
        yield b"".join(batch)


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Import, then time verify in each mode and a rebuild (the database is migrated)."""
    settings = Settings(database_url=url, migrate_database_url=url, log_format="json")
    pool = await create_pool(settings)
    figures: dict[str, Any] = {"events": args.scale, "sample_events": args.sample}
    try:
        store = EventStore(pool, TimelineProjector())
        workload = Workload(seed=args.seed, stream=0, span=args.scale)
        started = time.perf_counter()
        result = await import_ndjson(
            store, split_lines(_lines(workload, args.scale)), chunk_size=CHUNK
        )
        figures["import_seconds"] = round(time.perf_counter() - started, 1)
        figures["rejected"] = result.rejected
        sys.stderr.write(f"imported {result.accepted} events in {figures['import_seconds']} s\n")
        reader = AuditReader(pool, None, sample_events=args.sample)
        for mode in ORDER:
            figures[mode] = await _rounds(reader, mode, args.rounds)
        started = time.perf_counter()
        report = await TimelineProjector().rebuild(Connector.of(settings))
        figures["rebuild"] = {
            "seconds": round(time.perf_counter() - started, 2),
            "rows": report.rows,
        }
        sys.stderr.write(f"rebuild: {figures['rebuild']['seconds']} s\n")
    finally:
        await pool.close()
    return figures


async def _rounds(reader: AuditReader, mode: ProjectionMode, rounds: int) -> dict[str, Any]:
    seconds: list[float] = []
    report = None
    for round_ in range(rounds):
        started = time.perf_counter()
        report = await reader.verify(None, None, projections=mode)
        seconds.append(time.perf_counter() - started)
        sys.stderr.write(f"verify projections={mode} round {round_ + 1}: {seconds[-1]:.2f} s\n")
        if not report.ok:
            raise RuntimeError(f"verify failed: {report}")
    assert report is not None
    projections = report.projections
    return {
        "seconds": [round(s, 2) for s in seconds],
        "best_seconds": round(min(seconds), 2),
        "places": projections.places,
        "places_checked": projections.places_checked,
        "events_checked": projections.events_checked,
        "rows_checked": projections.rows_checked,
        "links_checked": report.links.checked,
    }


def table(figures: dict[str, Any]) -> str:
    """The figures as a markdown table."""
    lines = [
        f"verify of {figures['events']:,} events (sample: {figures['sample_events']:,} events)",
        "",
        "| projections | best s | places checked | events refolded | rows compared |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for mode in ORDER:
        f = figures[mode]
        lines.append(
            f"| {mode} | {f['best_seconds']} | {f['places_checked']:,} of {f['places']:,} | "
            f"{f['events_checked']:,} | {f['rows_checked']:,} |"
        )
    rebuild = figures["rebuild"]
    lines.append(f"| (rebuild) | {rebuild['seconds']} | | | {rebuild['rows']:,} written |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run it; write bench/out/verify-*.json; print the table."""
    args = parser().parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    external = os.environ.get("DATABASE_URL") or None
    embedded: EmbeddedPostgres | None = None
    if external is None:
        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="frontline-verify-pg-")), True)
    started = time.perf_counter()
    try:
        server_url = embedded.start() if embedded is not None else str(external)
        url = asyncio.run(recreate_database(server_url, DATABASE))
        migrate.upgrade(url)
        figures = asyncio.run(run(url, args))
    finally:
        if embedded is not None:
            embedded.stop()
    figures["total_seconds"] = round(time.perf_counter() - started, 1)
    payload = {
        "machine": machine_info("", external is not None),
        "source": source_revision(),
        "command": shlex.join([sys.executable, "-m", "bench.verify", *(argv or sys.argv[1:])]),
        "figures": figures,
    }
    out = args.out / f"verify-{stamp}.json"
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.write(table(figures) + f"\n\nresults: {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
