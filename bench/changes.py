"""How ``GET /v1/state/changes`` reads the segments: its query's plans and timings on a
synthetic segments table (docs/benchmarks.md).

    python -m bench.changes                          # 100,000 rows over 20,000 places
    python -m bench.changes --rows 20000 --places 5000 --repeat 3

The table is written directly (no log): places Zipf-skewed by their number of segments
(the busiest holds about 8 % of the rows), day boundaries from 2011 to 2024, controller,
status and disputed drawn per segment, and four in ten segments with an older, closed
version (known range ended), as a log with backdated reports leaves. For each question the
query (``service/projections/sql/read_state_changes.sql``) runs as a prepared statement under the
custom plan and under the generic plan (the one a statement cached by asyncpg ends up with),
best and median of ``--repeat``, with the places it probed (``EXPLAIN ANALYZE``).
``--alternatives`` also measures what the existing indexes offer otherwise: the GiST probed
with the valid and known ranges alone (no place), and the cost on inserts of the B-tree over
``(valid_from, place_id)`` that would give the changes without visiting places.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg

from bench.servers import EmbeddedPostgres, drop_database, recreate_database
from service.projections.queries import SQL
from service.store import migrate

SIDES: Final = ("syrian-government", "isis", "sdf", "us-coalition", "hts", "turkey", "sna")
STATUSES: Final = ("controlled",) * 6 + ("encircled", "contested")
FIRST: Final = datetime(2011, 3, 15, tzinfo=UTC)
DAYS: Final = 5040
LATEST: Final = 2_000_000
"""The known position of the latest state: every row's known range starts before it."""
SEGMENT_COLUMNS: Final = (
    "place_id", "valid_from", "valid_to", "known_from", "known_to", "controller", "status",
    "status_by", "disputed", "confidence", "basis", "body",
)  # fmt: skip
PLACE_COLUMNS: Final = (
    "id", "name", "kind", "lat", "lon", "aliases", "version", "first_position", "last_position",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Table:
    """What was written: rows, places, the busiest place and its number of segments."""

    rows: int
    places: int
    busiest: str
    busiest_segments: int


def synthetic(places: int, rows: int, seed: int = 12) -> tuple[list[tuple[Any, ...]], ...]:
    """Rows of ``places`` and ``segments``: about ``rows`` segments in all."""
    rng = random.Random(seed)
    harmonic = sum(1 / (i + 1) for i in range(places))
    scale = max(rows * 0.62 - places * 0.5, 0) / harmonic
    place_rows: list[tuple[Any, ...]] = []
    segment_rows: list[tuple[Any, ...]] = []
    order = list(range(places))
    rng.shuffle(order)
    for rank, number in enumerate(order):
        place = f"sy-p{number:05d}"
        count = min(max(1, round(scale / (rank + 1))), DAYS - 1)
        days = sorted(rng.sample(range(DAYS), count))
        place_rows.append(
            (place, f"Place {number}", "village", 32 + rng.random() * 5,
             35.5 + rng.random() * 6, [], count, 1, 1)
        )  # fmt: skip
        controller = rng.choice(SIDES)
        for index, start in enumerate(days):
            valid_from = FIRST + timedelta(days=start)
            valid_to = FIRST + timedelta(days=days[index + 1]) if index + 1 < count else None
            if rng.random() < 0.3:
                controller = rng.choice(SIDES)
            status = rng.choice(STATUSES)
            status_by = rng.choice(SIDES) if status != "controlled" else None
            disputed = rng.random() < 0.2
            body = json.dumps(
                {
                    "valid_from": valid_from.isoformat(),
                    "valid_to": valid_to.isoformat() if valid_to else None,
                    "controller": controller, "held_since": None, "status": status,
                    "status_by": status_by, "disputed": disputed, "confidence": 50,
                    "basis": "assessed", "claims": [], "supports": [], "reason": None,
                    "events": [
                        f"00000000-0000-4000-8000-{rng.randrange(10**12):012d}"
                        for _ in range(rng.randint(1, 8))
                    ],
                }
            )  # fmt: skip
            known_from = rng.randint(2, LATEST - 1)

            shared = (status, status_by, disputed, 50, "assessed", body)
            if rng.random() < 0.6:
                closed_from = rng.randint(1, known_from - 1)
                old_side = rng.choice(SIDES)
                segment_rows.append(
                    (place, valid_from, valid_to, closed_from, known_from, old_side, *shared)
                )
            segment_rows.append(
                (place, valid_from, valid_to, known_from, None, controller, *shared)
            )
    return place_rows, segment_rows


async def fill(conn: asyncpg.Connection, places: int, rows: int) -> Table:
    """Write the synthetic places and segments (replacing any) and analyze them."""
    place_rows, segment_rows = synthetic(places, rows)
    await conn.execute("TRUNCATE segments")
    await conn.execute("DELETE FROM places")
    await conn.copy_records_to_table("places", records=place_rows, columns=PLACE_COLUMNS)
    await conn.copy_records_to_table("segments", records=segment_rows, columns=SEGMENT_COLUMNS)
    await conn.execute("ANALYZE places")
    await conn.execute("ANALYZE segments")
    busiest = await conn.fetchrow(
        "SELECT place_id, count(*) AS n FROM segments WHERE known_to IS NULL"
        " GROUP BY place_id ORDER BY n DESC LIMIT 1"
    )
    assert busiest is not None
    return Table(len(segment_rows), len(place_rows), busiest["place_id"], busiest["n"])


def questions(table: Table) -> dict[str, tuple[Any, ...]]:
    """The arguments of read_state_changes.sql for each question asked."""
    week = (datetime(2017, 6, 1, tzinfo=UTC), datetime(2017, 6, 8, tzinfo=UTC))
    year = (datetime(2017, 1, 1, tzinfo=UTC), datetime(2017, 12, 31, tzinfo=UTC))
    always = (FIRST, datetime(2025, 1, 1, tzinfo=UTC))
    nowhere = (None, None, None, None)
    box = (37.0, 34.0, 39.0, 36.0)
    middle = datetime(2018, 1, 1, tzinfo=UTC)
    return {
        "a quiet week, every place": (*week, LATEST, "", None, None, None, *nowhere, 500),
        "all of time, every place": (*always, LATEST, "", None, None, None, *nowhere, 500),
        "a week, as known at a past position": (
            *week, LATEST // 2, "", None, None, None, *nowhere, 500,
        ),
        "a week, side=isis": (*week, LATEST, "", None, None, "isis", *nowhere, 500),
        "a year, a 2x2 degree box": (*year, LATEST, "", None, None, None, *box, 500),
        "all of time, the busiest place": (
            *always, LATEST, "", None, table.busiest, None, *nowhere, 500,
        ),
        "the busiest place, a cursor inside it": (
            *always, LATEST, table.busiest, middle, table.busiest, None, *nowhere, 500,
        ),
    }  # fmt: skip


def _loops(plan: dict[str, Any], index: str = "segments_place_bitemporal") -> int:
    """How many times the plan probed ``index`` (the places it visited)."""
    own = plan.get("Actual Loops", 0) if plan.get("Index Name") == index else 0
    return int(own) + sum(_loops(child, index) for child in plan.get("Plans", []))


PARAMETER_TYPES: Final = (
    "timestamptz, timestamptz, bigint, text, timestamptz, text, text, "
    "float8, float8, float8, float8, integer"
)
"""The types of read_state_changes.sql's parameters, in order."""


def _literal(value: object) -> str:
    """A bench-made argument as SQL text (EXPLAIN EXECUTE takes no bound parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


async def measure(
    conn: asyncpg.Connection, mode: str, args: tuple[Any, ...], repeat: int
) -> dict[str, Any]:
    """Timings (ms) of the query as a prepared statement under ``mode`` (plan_cache_mode),
    the rows it answered, and the places the plan probed (EXPLAIN ANALYZE of the same prepared
    statement, so of the same generic or custom plan)."""
    await conn.execute(f"SET plan_cache_mode = {mode}")
    try:
        statement = await conn.prepare(SQL.read_state_changes)
        times, found = [], 0
        for _ in range(repeat):
            started = time.perf_counter()
            found = len(await statement.fetch(*args))
            times.append((time.perf_counter() - started) * 1000)
        await conn.execute(f"PREPARE bench_changes ({PARAMETER_TYPES}) AS {SQL.read_state_changes}")
        try:
            arguments = ", ".join(_literal(a) for a in args)
            explained = await conn.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE bench_changes({arguments})"
            )
        finally:
            await conn.execute("DEALLOCATE bench_changes")
    finally:
        await conn.execute("RESET plan_cache_mode")
    (plan,) = json.loads(explained)
    return {
        "best_ms": round(min(times), 1),
        "median_ms": round(statistics.median(times), 1),
        "rows": found,
        "places_probed": _loops(plan["Plan"]),
        "plan_top": [plan["Plan"]["Node Type"], plan["Plan"]["Plans"][0]["Node Type"]],
    }


async def alternatives(conn: asyncpg.Connection) -> dict[str, Any]:
    """What else the indexes offer: the GiST without a place, and an extra B-tree's price."""
    (plan,) = json.loads(
        await conn.fetchval(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT count(*) FROM segments"
            " WHERE tstzrange(valid_from, valid_to, '[)') && tstzrange($1, $2, '[]')"
            "   AND int8range(known_from, known_to, '[)') @> $3::bigint",
            datetime(2017, 6, 1, tzinfo=UTC),
            datetime(2017, 6, 8, tzinfo=UTC),
            LATEST,
        )
    )

    def index_buffers(node: dict[str, Any]) -> int:
        own = node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
        mine = own if node.get("Index Name") == "segments_place_bitemporal" else 0
        return int(mine) + sum(index_buffers(child) for child in node.get("Plans", []))

    pages = await conn.fetchval(
        "SELECT pg_relation_size('segments_place_bitemporal') / current_setting('block_size')::int"
    )
    rows = await conn.fetch(f"SELECT {', '.join(SEGMENT_COLUMNS)} FROM segments")
    records = [tuple(r) for r in rows]
    variants = {"as shipped": "bench_plain", "with (valid_from, place_id)": "bench_btree"}
    for table in variants.values():
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.execute(f"CREATE TABLE {table} (LIKE segments INCLUDING ALL)")
    await conn.execute("CREATE INDEX ON bench_btree (valid_from, place_id)")
    best = dict.fromkeys(variants, float("inf"))
    for turn in range(6):  # alternating who goes first, best of six: the machine is shared
        for name in sorted(variants, reverse=bool(turn % 2)):
            await conn.execute(f"TRUNCATE {variants[name]}")
            started = time.perf_counter()
            await conn.copy_records_to_table(
                variants[name], records=records, columns=SEGMENT_COLUMNS
            )
            best[name] = min(best[name], time.perf_counter() - started)
    copies = {name: round(seconds * 1000) for name, seconds in best.items()}
    for table in variants.values():
        await conn.execute(f"DROP TABLE {table}")
    return {
        "gist_without_place_week": {
            "index_pages_read": index_buffers(plan["Plan"]),
            "index_pages": pages,
            "ms": round(plan["Execution Time"], 1),
        },
        "copy_all_rows_ms": copies,
    }


async def run(server_url: str, places: int, rows: int, repeat: int, extra: bool) -> dict[str, Any]:
    """Fill a fresh database, ask every question under both plans; the results."""
    name = "frontline_bench_changes"
    url = await recreate_database(server_url, name)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        conn = await asyncpg.connect(url)
        try:
            table = await fill(conn, places, rows)
            results: dict[str, Any] = {"table": dataclasses.asdict(table), "questions": {}}
            for question, args in questions(table).items():
                results["questions"][question] = {
                    mode: await measure(conn, mode, args, repeat)
                    for mode in ("force_custom_plan", "force_generic_plan")
                }
            if extra:
                results["alternatives"] = await alternatives(conn)
            return results
        finally:
            await conn.close()
    finally:
        await drop_database(server_url, name)


def report(results: dict[str, Any]) -> str:
    """A markdown table of the results."""
    table = results["table"]
    lines = [
        f"{table['rows']:,} segment rows over {table['places']:,} places "
        f"(the busiest: {table['busiest_segments']:,} current segments)",
        "",
        "| question | rows | places probed | custom plan best / median ms "
        "| generic plan best / median ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for question, modes in results["questions"].items():
        custom, generic = modes["force_custom_plan"], modes["force_generic_plan"]
        lines.append(
            f"| {question} | {custom['rows']} | {custom['places_probed']:,} / "
            f"{generic['places_probed']:,} | {custom['best_ms']} / {custom['median_ms']} "
            f"| {generic['best_ms']} / {generic['median_ms']} |"
        )
    if "alternatives" in results:
        alt = results["alternatives"]
        gist = alt["gist_without_place_week"]
        lines += [
            "",
            f"GiST probed with a week and a known position, no place: {gist['index_pages_read']:,}"
            f" of its {gist['index_pages']:,} pages read, {gist['ms']} ms.",
            "COPY of every row into a copy of segments: "
            + ", ".join(f"{k} {v:,} ms" for k, v in alt["copy_all_rows_ms"].items())
            + ".",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.changes", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="segment rows (about)")
    parser.add_argument("--places", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each question and plan")
    parser.add_argument("--database-url", help="a PostgreSQL server (default: an embedded one)")
    parser.add_argument("--alternatives", action="store_true", help="also the other indexes")
    args = parser.parse_args(argv)
    server: EmbeddedPostgres | None = None
    url = args.database_url
    if url is None:
        server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="frontline-bench-")), remove=True)
        url = server.start()
    try:
        results = asyncio.run(run(url, args.places, args.rows, args.repeat, args.alternatives))
    finally:
        if server is not None:
            server.stop()
    print(report(results))
    print(json.dumps(results), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
