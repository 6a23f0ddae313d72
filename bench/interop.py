"""Import rate of each source format against the NDJSON import of the same events (issue 6).

For each format: generate an N-row file (default 100,000) with a seeded generator, map it the
way the importer does (the same reader and the place rule on an empty registry) to the events
it stores, and write those as NDJSON. Then, each on a fresh migrated database of the same
PostgreSQL, time ``frontline import --format F FILE`` and ``frontline import FILE.ndjson``
(whole commands, start-up included), alternating who goes first over ``--rounds``. The ratio is
NDJSON seconds / format seconds: the format's events/s over NDJSON's, the same events. Goal:
at least 0.5.

    python -m bench.interop                      # 100,000 rows, every format
    python -m bench.interop --rows 20000 --formats acled

Adding a format is one entry in GENERATORS: ``name -> file(n, rng) -> bytes``.
PostgreSQL is the embedded one in a temporary folder, or the server of ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import msgspec

from bench.run import machine_info, source_revision
from bench.servers import (
    VENV_BIN,
    EmbeddedPostgres,
    drop_database,
    recreate_database,
    run_checked,
)
from service.interop import acled
from service.interop.formats import READERS
from service.interop.places import PlaceIndex
from service.interop.prepare import place_of

GOAL: Final = 0.5
Generator = Callable[[int, random.Random], bytes]

# --- generators: one per format -------------------------------------------------------------

_ACTORS: Final = (
    "Military Forces of Syria (2000-)", "Islamic State (Syria)", "SDF: Syrian Democratic Forces",
    "Hay'at Tahrir al-Sham", "Military Forces of Turkey (2016-)", "Jaysh al-Izza",
    "Military Forces of United States (2017-2021)", "Liwa al-Quds", "Ahrar al-Sham",
)  # fmt: skip
_SUB_EVENTS: Final = (
    ("Battles", "Armed clash", 40),
    ("Explosions/Remote violence", "Shelling/artillery/missile attack", 25),
    ("Explosions/Remote violence", "Air/drone strike", 15),
    ("Explosions/Remote violence", "Remote explosive/landmine/IED", 5),
    ("Battles", "Government regains territory", 4),
    ("Battles", "Non-state actor overtakes territory", 4),
    ("Strategic developments", "Headquarters or base established", 2),
    ("Strategic developments", "Non-violent transfer of territory", 1),
    ("Protests", "Peaceful protest", 4),
)
_SOURCES: Final = (
    "Syrian Observatory for Human Rights", "SANA", "Step News Agency", "Hawar News Agency",
    "South Front; SANA", "Enab Baladi", "Anadolu Ajansı", "Reuters", "Local Source",
)  # fmt: skip
_GOVERNORATES: Final = (
    "Aleppo", "Idleb", "Hama", "Homs", "Ar-Raqqa", "Deir ez-Zor", "Al-Hasakeh", "Dar'a",
)  # fmt: skip


def acled_file(n: int, rng: random.Random) -> bytes:
    """An ACLED export of ``n`` rows: realistic mix of sub-event types (4% unmapped
    protests), ~2,000 places (some names repeated far apart), quoted notes with commas."""
    places = []
    for i in range(2000):
        name = f"{rng.choice(('Tall', 'Kafr', 'Khirbet', 'Al', 'Ayn', 'Jabal'))} {i % 1700:04d}"
        places.append((name, 32.5 + rng.random() * 4.5, 35.8 + rng.random() * 6.0))
    weights = [w for *_, w in _SUB_EVENTS]
    start = date(2017, 1, 1)
    out = [",".join(acled.COLUMNS)]
    for i in range(n):
        event_type, sub_event, _ = rng.choices(_SUB_EVENTS, weights)[0]
        name, lat, lon = rng.choice(places)
        a1, a2 = rng.sample(_ACTORS, 2)
        gov = rng.choice(_GOVERNORATES)
        day = start + timedelta(days=rng.randrange(1800))
        killed = rng.choice((0, 0, 0, 1, 2, 3, 5, 12))
        notes = (
            f'"On {day:%d %B %Y}, {a1} and {a2} clashed near {name}, {gov}; '
            f'{killed} killed, ""according to local sources""."'
        )
        cells = [
            f"SYR{i + 1}", day.isoformat(), str(day.year), rng.choice("1112"),
            "Political violence", event_type, sub_event, f'"{a1}"', "", "1", f'"{a2}"', "",
            "2", "12", "", "760", "Middle East", "Syria", gov, f"{gov} district", "", name,
            f"{lat:.4f}", f"{lon:.4f}", rng.choice("1123"), f'"{rng.choice(_SOURCES)}"',
            "National", notes, str(killed), "", str(1_500_000_000 + i),
        ]  # fmt: skip
        out.append(",".join(cells))
    return ("\n".join(out) + "\n").encode()


def _more_generators() -> dict[str, Generator]:
    """UCDP GED and PLOVER generators, once bench/interop_more.py is merged."""
    try:
        from bench import interop_more  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return {}
    found: dict[str, Generator] = {}
    for fmt, name in (("ucdp-ged", "ucdp_file"), ("plover", "plover_file")):
        generator = getattr(interop_more, name, None)
        if generator is not None and fmt in READERS:
            found[fmt] = generator
    return found


GENERATORS: Final[dict[str, Generator]] = {"acled": acled_file, **_more_generators()}


# --- the run --------------------------------------------------------------------------------


def same_events_as_ndjson(fmt: str, data: bytes) -> tuple[bytes, int, int]:
    """The events ``frontline import --format fmt`` stores from ``data`` into an empty
    database, as NDJSON; with the numbers of rows and events."""
    index = PlaceIndex([])
    encode = msgspec.json.Encoder().encode
    lines: list[bytes] = []
    rows = 0
    for row in READERS[fmt](data):
        rows += 1
        if row.error is not None or row.place is None:
            continue
        place = place_of(row.place, index.resolve(row.place))
        lines.extend(encode({**event, "place": place}) for event in row.events)
    return b"\n".join(lines) + b"\n", rows, len(lines)


def timed(command: list[str], env: dict[str, str], log: Path) -> float:
    """Seconds to run ``command`` to its end; exit 0, or 2 (some rows rejected, as the
    generated files mean to), else RuntimeError."""
    started = time.perf_counter()
    with log.open("ab") as out:
        done = subprocess.run(  # noqa: S603 (our own venv's command)
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 2):
        raise RuntimeError(f"{shlex.join(command)} failed ({done.returncode}); see {log}")
    return elapsed


def parser() -> argparse.ArgumentParser:
    args = argparse.ArgumentParser(prog="python -m bench.interop", description=__doc__)
    args.add_argument("--rows", type=int, default=100_000, help="rows per generated file")
    args.add_argument("--formats", nargs="*", default=None, help="formats (default: all)")
    args.add_argument("--rounds", type=int, default=2, help="alternating rounds per format")
    args.add_argument("--seed", type=int, default=6, help="the generators' seed")
    args.add_argument(
        "--projections",
        choices=("on", "off"),
        default="off",
        help="FRONTLINE_PROJECTIONS of both imports (off: the log alone, as `make bench`)",
    )
    args.add_argument("--out", type=Path, default=Path("bench/out"), help="results folder")
    return args


def run_format(fmt: str, args: argparse.Namespace, server_url: str, work: Path) -> dict[str, Any]:
    """Time one format against NDJSON, ``--rounds`` times each, alternating."""
    data = GENERATORS[fmt](args.rows, random.Random(args.seed))
    source = work / f"interop-{fmt}.data"
    source.write_bytes(data)
    ndjson, rows, events = same_events_as_ndjson(fmt, data)
    ndjson_file = work / f"interop-{fmt}.ndjson"
    ndjson_file.write_bytes(ndjson)
    frontline = str(VENV_BIN / "frontline")
    commands = {
        fmt: [frontline, "import", "--format", fmt, str(source)],
        "ndjson": [frontline, "import", str(ndjson_file)],
    }
    seconds: dict[str, list[float]] = {fmt: [], "ndjson": []}
    for round_ in range(args.rounds):
        order = [fmt, "ndjson"] if round_ % 2 == 0 else ["ndjson", fmt]
        for which in order:
            name = f"bench_interop_{which.replace('-', '_')}"
            url = asyncio.run(recreate_database(server_url, name))
            env = {
                "DATABASE_URL": url,
                "FRONTLINE_LOG_FORMAT": "json",
                "FRONTLINE_PROJECTIONS": args.projections,
            }
            log = work / f"interop-{which}.log"
            run_checked([frontline, "migrate"], env, log)
            seconds[which].append(timed(commands[which], env, log))
            asyncio.run(drop_database(server_url, name))
    best = {k: min(v) for k, v in seconds.items()}
    return {
        "rows": rows,
        "events": events,
        "bytes": len(data),
        "seconds": seconds,
        "rows_per_s": round(rows / best[fmt]),
        "events_per_s": round(events / best[fmt]),
        "ndjson_events_per_s": round(events / best["ndjson"]),
        "ratio": round(best["ndjson"] / best[fmt], 2),
        "goal": GOAL,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run every format; write bench/out/interop-*.json; print a table."""
    args = parser().parse_args(argv)
    formats = args.formats or list(GENERATORS)
    unknown = [f for f in formats if f not in GENERATORS]
    if unknown:
        parser().error(f"no generator for {', '.join(unknown)}; have {', '.join(GENERATORS)}")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    external = os.environ.get("DATABASE_URL") or None
    embedded = None
    if external is None:
        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="frontline-interop-pg-")), True)
    try:
        server_url = embedded.start() if embedded is not None else str(external)
        figures = {fmt: run_format(fmt, args, server_url, work) for fmt in formats}
    finally:
        if embedded is not None:
            with suppress(Exception):
                embedded.stop()
    command = shlex.join([sys.executable, "-m", "bench.interop", *(argv or sys.argv[1:])])
    payload = {
        "machine": machine_info("", external is not None),
        "source": source_revision(),
        "command": command,
        "projections": args.projections,
        "figures": figures,
    }
    out = args.out / f"interop-{stamp}.json"
    out.write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "| format | rows | events | rows/s | events/s | NDJSON events/s | ratio | goal |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for fmt, f in figures.items():
        lines.append(
            f"| {fmt} | {f['rows']:,} | {f['events']:,} | {f['rows_per_s']:,} | "
            f"{f['events_per_s']:,} | {f['ndjson_events_per_s']:,} | **{f['ratio']}** | "
            f">= {GOAL} |"
        )
    sys.stdout.write("\n".join(lines) + f"\n\nresults: {out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
