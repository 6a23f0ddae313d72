"""What the event filters' indexes (migration 0009 and after) cost the import, in one run.

Three databases of one embedded PostgreSQL, each migrated to the head, three services with
projections off (``FRONTLINE_PROJECTIONS=off``: the log alone, where an index's cost is
not hidden by the fold): ``none`` without the indexes the event filters added on
``events``, ``0009`` with migration 0009's, ``head`` with the head's (migration 0010). The
same NDJSON segments are imported into each, segment by segment, the order rotating. Then,
in ``head``: PostgreSQL's own cost of each index expression, read off a sequential scan that
evaluates it for every row, against a scan that only reads the payload; and what each index
(or set) costs an inserted row, ``INSERT INTO copy SELECT * FROM events`` into a copy of the
log's table that has it, against the copy with none.

    python -m bench.filter_indexes --scale 100000 --segment 20000   # about 5 min

Results go to ``bench/out/filter-indexes-<time>.json``; a summary is printed. See
docs/benchmarks.md ("The event filters' indexes").
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import asyncpg

from bench import client
from bench.client import upload
from bench.run import HOST, NDJSON, OUT, Segment, import_files, machine_info, source_revision
from bench.servers import (
    VENV_BIN,
    EmbeddedPostgres,
    ServerProcess,
    free_port,
    grant_key,
    recreate_database,
    run_checked,
)
from service.roles import new_key

MIGRATION_0010: Final = importlib.import_module("migrations.versions.0010_partial_filter_indexes")
"""Its definitions: the head's, and 0009's that it replaced."""

DATABASES: Final = {
    "none": "frontline_idx_none",
    "0009": "frontline_idx_0009",
    "head": "frontline_idx_head",
}
"""The log without the filters' indexes on ``events``, with migration 0009's, with the
head's (migration 0010: cheaper)."""

FILTER_INDEXES: Final = (
    "events_type_position",
    "events_side_position",
    "events_opponent_position",
    "events_actor_position",
    "events_valid",
)
"""The indexes on ``events`` that the event filters added (the ones an append maintains)."""

FIELDS: Final = r"(replace(payload, '\u0000', '\u0020')::jsonb)"

JSON_FIELDS: Final = r"(replace(payload, '\u0000', '\u0020')::json)"

EXPRESSIONS: Final = {
    "payload read": "length(payload)",
    "replace only": r"length(replace(payload, '\u0000', '\u0020'))",
    "side (jsonb)": f"({FIELDS} ->> 'side')",
    "side (json)": f"({JSON_FIELDS} ->> 'side')",
    "actor (jsonb, lower)": f"lower({FIELDS} ->> 'actor')",
    "valid range": "tstzrange(valid_from, valid_to)",
}
"""What a sequential scan evaluates, per row: the first is the baseline."""


def parser() -> argparse.ArgumentParser:
    """The command line."""
    args = argparse.ArgumentParser(
        prog="python -m bench.filter_indexes",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    args.add_argument("--scale", type=int, default=100_000, help="events imported")
    args.add_argument("--segment", type=int, default=20_000, help="events per import segment")
    args.add_argument("--seed", type=int, default=1, help="workload seed")
    args.add_argument("--out", type=Path, default=OUT, help="results and workload files")
    args.add_argument("--repeat", type=int, default=5, help="scans of each expression")
    return args


async def _drop_indexes(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for name in FILTER_INDEXES:
            await conn.execute(f"DROP INDEX {name}")
    finally:
        await conn.close()


async def _expressions(url: str, repeat: int) -> dict[str, Any]:
    """Microseconds a row of each expression over the whole log, best of ``repeat`` scans."""
    conn = await asyncpg.connect(url)
    figures: dict[str, Any] = {}
    try:
        rows = int(await conn.fetchval("SELECT count(*) FROM events"))
        await conn.execute("SET max_parallel_workers_per_gather = 0")
        for name, expression in EXPRESSIONS.items():
            best = float("inf")
            for _ in range(repeat):
                started = time.perf_counter()
                await conn.fetchval(f"SELECT count({expression}) FROM events")
                best = min(best, time.perf_counter() - started)
            figures[name] = round(best / rows * 1e6, 2)
        base = figures["payload read"]
        figures["per_row_us_over_payload_read"] = {
            k: round(v - base, 2) for k, v in figures.items() if k != "payload read"
        }
        figures["rows"] = rows
    finally:
        await conn.close()
    return figures


VARIANTS: Final = {
    "none": (),
    "type": ("(type, position)",),
    "side": (f"(({FIELDS} ->> 'side'), position)",),
    "opponent (0009)": (f"(({FIELDS} ->> 'opponent'), position)",),
    "opponent (head: partial)": (MIGRATION_0010.INDEXES["events_opponent_position"][7:],),
    "actor (0009)": (f"((lower({FIELDS} ->> 'actor')), position)",),
    "actor (head: partial)": (MIGRATION_0010.INDEXES["events_actor_position"][7:],),
    "valid (GiST)": ("USING gist (tstzrange(valid_from, valid_to))",),
    "valid (SP-GiST, not taken)": ("USING spgist (tstzrange(valid_from, valid_to))",),
    "valid (BRIN, not taken)": ("USING brin (tstzrange(valid_from, valid_to))",),
    "0009's five": (
        "(type, position)",
        f"(({FIELDS} ->> 'side'), position)",
        "USING gist (tstzrange(valid_from, valid_to))",
        *(MIGRATION_0010.BEFORE[name][7:] for name in MIGRATION_0010.BEFORE),
    ),
    "head's five": (
        "(type, position)",
        f"(({FIELDS} ->> 'side'), position)",
        "USING gist (tstzrange(valid_from, valid_to))",
        *(MIGRATION_0010.INDEXES[name][7:] for name in MIGRATION_0010.INDEXES),
    ),
}
"""Index sets on a copy of the log's table: what each costs an inserted row."""


async def _index_costs(url: str, repeat: int) -> dict[str, Any]:
    """Microseconds a row that ``INSERT INTO copy SELECT * FROM events`` pays for each index
    set over none (best of ``repeat``; the copy has the log's columns and no other index)."""
    conn = await asyncpg.connect(url)
    figures: dict[str, Any] = {}
    try:
        rows = int(await conn.fetchval("SELECT count(*) FROM events"))
        for key in ("side", "opponent", "actor"):
            figures[f"share with {key}"] = round(
                float(
                    await conn.fetchval(
                        f"SELECT avg(({FIELDS} ->> '{key}' IS NOT NULL)::int) FROM events"
                    )
                ),
                3,
            )
        await conn.execute("SET max_parallel_workers_per_gather = 0")
        await conn.execute("DROP TABLE IF EXISTS bench_events")
        await conn.execute("CREATE TABLE bench_events (LIKE events)")
        best: dict[str, float] = dict.fromkeys(VARIANTS, float("inf"))
        for _ in range(repeat):  # each round times every set once: the load moves all alike
            for name, definitions in VARIANTS.items():
                await conn.execute("TRUNCATE bench_events")
                for n, definition in enumerate(definitions):
                    await conn.execute(
                        f"CREATE INDEX bench_events_{n} ON bench_events {definition}"
                    )
                await conn.execute("CHECKPOINT")
                started = time.perf_counter()
                await conn.execute("INSERT INTO bench_events SELECT * FROM events")
                best[name] = min(best[name], time.perf_counter() - started)
                for n in range(len(definitions)):
                    await conn.execute(f"DROP INDEX bench_events_{n}")
        for name, seconds in best.items():
            figures[name] = round(seconds / rows * 1e6, 2)
        base = figures["none"]
        figures["per_row_us_over_none"] = {
            k: round(v - base, 2)
            for k, v in figures.items()
            if k != "none" and not k.startswith("share")
        }
        await conn.execute("DROP TABLE bench_events")
    finally:
        await conn.close()
    return figures


async def _set_variant(url: str, variant: str) -> None:
    """Make the database's filter indexes those of ``variant`` (it is migrated to the head)."""
    conn = await asyncpg.connect(url)
    try:
        if variant == "none":
            for name in FILTER_INDEXES:
                await conn.execute(f"DROP INDEX {name}")
        elif variant == "0009":
            for name, definition in MIGRATION_0010.BEFORE.items():
                await conn.execute(f"DROP INDEX {name}")
                await conn.execute(f"CREATE INDEX {name} ON {definition}")
            for name in MIGRATION_0010.STATISTICS:
                await conn.execute(f"DROP STATISTICS {name}")
    finally:
        await conn.close()


async def _ingest(
    services: dict[str, ServerProcess], urls: dict[str, str], segments: list[Segment]
) -> dict[str, list[float]]:
    """Each segment into every service, the order rotating; seconds per segment."""
    names = list(services)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for index, segment in enumerate(segments):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            conn = await asyncpg.connect(urls[name])
            try:
                await conn.execute("CHECKPOINT")
            finally:
                await conn.close()
            started = time.perf_counter()
            answer = await upload(HOST, services[name].port, "/v1/events", segment.path, NDJSON)
            took = time.perf_counter() - started
            summary = json.loads(answer.body)
            if answer.status != 201 or summary.get("accepted") != segment.events:
                raise RuntimeError(f"import failed: {answer.status} {answer.body[:500]!r}")
            seconds[name].append(round(took, 3))
            sys.stderr.write(
                f"segment {index + 1}/{len(segments)} {name}: {segment.events / took:,.0f}/s\n"
            )
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    """Import into the three databases; scan the expressions; time the index sets."""
    args = parser().parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="frontline-idx-pg-")), remove=True)
    services: dict[str, ServerProcess] = {}
    load = os.getloadavg()
    try:
        server_url = embedded.start()
        urls = {k: asyncio.run(recreate_database(server_url, db)) for k, db in DATABASES.items()}
        key = new_key()
        client.AUTH = f"Authorization: Bearer {key}\r\n"
        for name, url in urls.items():
            env = {
                "DATABASE_URL": url,
                "FRONTLINE_LOG_FORMAT": "json",
                "FRONTLINE_RATE_LIMIT": "0",
                "FRONTLINE_PROJECTIONS": "off",
            }
            run_checked([str(VENV_BIN / "frontline"), "migrate"], env, work / f"migrate-{name}.log")
            asyncio.run(grant_key(url, key))
            asyncio.run(_set_variant(url, name))
            port = free_port()
            services[name] = ServerProcess(
                name=name,
                command=[str(VENV_BIN / "frontline"), "serve", "--port", str(port)],
                env=env,
                log_path=work / f"idx-{name}-{stamp}.log",
                port=port,
                ready_path="/ready",
            )
            services[name].start()
        count = math.ceil(args.scale / args.segment)
        segments = import_files(work, args.seed, args.scale, count)
        seconds = asyncio.run(_ingest(services, urls, segments))
        rates = {name: args.scale / sum(s) for name, s in seconds.items()}
        expressions = asyncio.run(_expressions(urls["head"], args.repeat))
        index_costs = asyncio.run(_index_costs(urls["head"], args.repeat))
        figures = {
            "events_per_s": {name: round(rate) for name, rate in rates.items()},
            "us_per_event": {name: round(1e6 / rate, 1) for name, rate in rates.items()},
            "ratio_to_none": {name: round(rate / rates["none"], 3) for name, rate in rates.items()},
            "ratio_to_none_per_segment": {
                name: [round(n / s, 3) for n, s in zip(seconds["none"], ss, strict=True)]
                for name, ss in seconds.items()
            },
            "seconds_per_segment": seconds,
            "expressions_us_per_row": expressions,
            "insert_us_per_row": index_costs,
            "load_average_start": load,
            "load_average_end": os.getloadavg(),
        }
        payload = {
            "machine": machine_info("", False),
            "source": source_revision(),
            "command": shlex.join([sys.executable, "-m", "bench.filter_indexes", *sys.argv[1:]]),
            "figures": figures,
        }
        out = args.out / f"filter-indexes-{stamp}.json"
        out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        sys.stdout.write(json.dumps(figures, indent=2, default=str) + f"\n\nresults: {out}\n")
        return 0
    finally:
        for service in services.values():
            service.stop()
        if embedded.url:
            embedded.stop()


if __name__ == "__main__":
    raise SystemExit(main())
