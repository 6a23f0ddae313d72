"""The alias refold benchmark (issue 14): an alias added for a side with many claims.

A log where ``--places`` places hold ``--claims`` claims each under a dataset's label (an
unregistered name: ``syrian-arab-army``) beside two reports each under the canonical side
(``syrian-government``), and ``--others`` places of other sides, is built through the store's
own append path (projections on). Then, in one run, through the group committer as the API
appends (no HTTP):

1. quiet: ``--posters`` clients each append single events to places of their own, one after
   the other, for ``--window`` seconds: the latency of each (p50, p99);
2. the alias: the same clients append while an editor registers the side with the label
   as an alias (``POST /v1/sides``' use case), which folds again every place whose events
   use the label, in the edit's commit: the edit's time, the claims and places it folded
   again (claims refolded per second), what finding those places costs
   (``read_places_naming.sql`` alone), and the latency of the appends that overlapped the
   edit (``overlapping_*``: they wait for its commit, which holds the head lock) and of
   all the appends of the ``--window`` seconds around it (``window_*``: that p99 depends
   on how long the window is, the overlapping one does not);
3. the rebuild: every row recomputed from the log (``frontline rebuild``'s use case, with
   its worker processes): events folded per second;
4. exactness: the places whose rows the edit's commit changed are labelled ones only, and
   the rows a rebuild writes are the rows the appends and the edit wrote, known ranges
   included.

Ratios in the same run: refold rate / rebuild rate (issue 14's goal >= 0.5) and the p99 of
the appends overlapping the edit / quiet (goal <= 2).

    .venv/bin/python -m bench.registry_refold                 # 100,000 claims over 5,000 places
    .venv/bin/python -m bench.registry_refold --places 50 --claims 4 --others 20 --window 0.5

Results go to ``bench/out/registry-refold-<time>.json`` (and ``registry-refold-latest.json``).
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import asyncpg
import msgspec

from bench.run import OUT, machine_info, source_revision
from contracts.events import event_decoder
from service import bootstrap
from service.domain.append import AppendRequest
from service.domain.records import prepare_event
from service.projections.queries import SQL as ProjectionSQL
from service.settings import Settings
from service.store import migrate
from service.store.db import start_embedded, stop_embedded
from service.usecases.registry import register_sides

LABEL: Final = "syrian-arab-army"
SIDE: Final = "syrian-government"
SOURCES: Final = ("Reuters", "AFP", "SOHR", "SANA", "South Front", "Amaq", "Enab Baladi")
ROWS: Final = (
    "SELECT place_id, valid_from, valid_to, known_from, known_to, controller, status,"
    " status_by, disputed, confidence, basis, body FROM segments"
    " ORDER BY place_id, known_from, valid_from"
)
LOAD_BATCH: Final = 2000
"""Events per commit while the log is built."""


def _event(place: str, side: str, day: int, n: int, kind: str = "control") -> dict[str, Any]:
    month, date = 1 + (day // 28) % 12, 1 + day % 28
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-refold/{place}/{n}")),
        "type": kind,
        "place": {"id": place, "name": place, "kind": "town"},
        "side": side,
        "opponent": "isis" if kind == "capture" else None,
        "occurred": {"start": f"2017-{month:02d}-{date:02d}", "precision": "day"},
        "source": {"name": SOURCES[n % len(SOURCES)], "reliability": "C"},
    }


def workload(places: int, claims: int, others: int) -> list[dict[str, Any]]:
    """The log to build: per labelled place ``claims`` claims under the label and two under
    the canonical side; per other place three claims of isis and the sdf."""
    events: list[dict[str, Any]] = []
    for p in range(places):
        place = f"sy-labelled-{p}"
        for n in range(claims):
            events.append(
                _event(place, LABEL, 10 * n + p % 7, n, "capture" if n % 5 == 0 else "control")
            )
        events.append(_event(place, SIDE, 3 + p % 11, claims))
        events.append(_event(place, "isis", 5 + p % 13, claims + 1))
    for p in range(others):
        place = f"sy-other-{p}"
        for n, side in enumerate(("isis", "sdf", "isis")):
            events.append(_event(place, side, 4 * n + p % 9, n))
    return [{k: v for k, v in e.items() if v is not None} for e in events]


def _request(event: dict[str, Any]) -> AppendRequest:
    return AppendRequest(events=(prepare_event(event_decoder.decode(msgspec.json.encode(event))),))


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Posters:
    """``count`` clients appending single events to places of their own, one after the
    other, each latency kept with its start time."""

    count: int
    tag: str
    running: bool = True

    async def run(self, committer: Any, latencies: list[tuple[float, float]]) -> None:
        async def one(client: int) -> None:
            n = 0
            while self.running:
                place = f"sy-poster-{self.tag}-{client}-{n % 50}"
                request = _request(_event(place, "isis", n % 300, n))
                start = time.perf_counter()
                await committer.append(request)
                latencies.append((start, time.perf_counter() - start))
                n += 1

        await asyncio.gather(*(one(c) for c in range(self.count)))


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Build the log, then the quiet window, the alias, the rebuild and the checks."""
    settings = Settings(database_url=url, migrate_database_url=url, pool_min=2, pool_max=8)
    figures: dict[str, Any] = {}
    async with bootstrap.services(settings) as services:
        store, committer = services.store, services.committer
        events = workload(args.places, args.claims, args.others)
        started = time.perf_counter()
        for at in range(0, len(events), LOAD_BATCH):
            await store.append_group([_request(e) for e in events[at : at + LOAD_BATCH]])
        figures["log_events"] = len(events)
        figures["postgres"] = await store.pool.fetchval("SHOW server_version")
        figures["load_seconds"] = round(time.perf_counter() - started, 2)
        labelled_claims = args.places * args.claims

        # 1. Quiet: the appends alone (after a short warm-up, unmeasured).
        warm = Posters(args.posters, "warm")
        warming = asyncio.create_task(warm.run(committer, []))
        await asyncio.sleep(min(1.0, args.window))
        warm.running = False
        await warming
        quiet: list[tuple[float, float]] = []
        posters = Posters(args.posters, "quiet")
        task = asyncio.create_task(posters.run(committer, quiet))
        await asyncio.sleep(args.window)
        posters.running = False
        await task

        # 2. The alias, with the same appends going on.
        during: list[tuple[float, float]] = []
        posters = Posters(args.posters, "alias")
        task = asyncio.create_task(posters.run(committer, during))
        await asyncio.sleep(args.window / 2)
        entry = {
            "side": SIDE,
            "name": "Syrian government forces",
            "kind": "state_force",
            "aliases": [LABEL],
        }
        alias_start = time.perf_counter()
        (receipt,) = await register_sides(
            committer, msgspec.json.encode(entry), submitter="bench", admin=True
        )
        alias_end = time.perf_counter()
        await asyncio.sleep(args.window / 2)
        posters.running = False
        await task
        alias_seconds = alias_end - alias_start
        edit = receipt.commit_position

        async with store.pool.acquire() as conn:
            changed = await conn.fetch(
                "SELECT DISTINCT place_id FROM segments WHERE known_from = $1 OR known_to = $1",
                edit,
            )
            # What finding the places costs (the edit runs the same query in its commit).
            found_at = time.perf_counter()
            found = await conn.fetch(ProjectionSQL.read_places_naming, [LABEL], edit)
            find_seconds = time.perf_counter() - found_at
            appended = await conn.fetch(
                "SELECT DISTINCT place_id FROM events WHERE commit_position = $1", edit
            )
        # The group committer may put other appends in the edit's commit: their places
        # change there for their own events.
        touched = {r["place_id"] for r in appended}
        changed_places = sorted(r["place_id"] for r in changed if r["place_id"] not in touched)

        # 3. The rebuild, then 4. its rows against the rows the appends and the edit wrote.
        async with store.pool.acquire() as conn:
            before = [tuple(r) for r in await conn.fetch(ROWS)]
        report = await services.rebuilds.rebuild()
        async with store.pool.acquire() as conn:
            after = [tuple(r) for r in await conn.fetch(ROWS)]

    overlapping = [
        lat for start, lat in during if start + lat >= alias_start and start <= alias_end
    ]
    quiet_latencies = [lat for _, lat in quiet]
    window_latencies = [lat for _, lat in during]
    refold_rate = labelled_claims / alias_seconds
    rebuild_rate = report.events / report.seconds if report.seconds else float("nan")
    quiet_p99 = _percentile(quiet_latencies, 0.99)
    figures.update(
        places=args.places,
        claims_per_place=args.claims,
        labelled_claims=labelled_claims,
        other_places=args.others,
        posters=args.posters,
        alias_seconds=round(alias_seconds, 3),
        alias_places_changed=len(changed_places),
        places_naming_the_label=len(found),
        find_seconds=round(find_seconds, 3),
        appends_in_the_edit_commit=len(touched) - 1,
        only_labelled_places_changed=all(p.startswith("sy-labelled-") for p in changed_places),
        refold_claims_per_second=round(refold_rate),
        rebuild_events=report.events,
        rebuild_seconds=round(report.seconds, 3),
        rebuild_workers=report.workers,
        rebuild_events_per_second=round(rebuild_rate),
        refold_to_rebuild=round(refold_rate / rebuild_rate, 3),
        quiet_posts=len(quiet_latencies),
        quiet_p50_ms=round(1000 * statistics.median(quiet_latencies), 2) if quiet else None,
        quiet_p99_ms=round(1000 * quiet_p99, 2),
        posts_overlapping_alias=len(overlapping),
        overlapping_p99_ms=round(1000 * _percentile(overlapping, 0.99), 2),
        overlapping_max_ms=round(1000 * max(overlapping), 2) if overlapping else None,
        overlapping_p99_to_quiet=round(_percentile(overlapping, 0.99) / quiet_p99, 2),
        window_posts=len(window_latencies),
        window_p99_ms=round(1000 * _percentile(window_latencies, 0.99), 2),
        window_p99_to_quiet=round(_percentile(window_latencies, 0.99) / quiet_p99, 2),
        rebuild_equals_incremental=before == after,
        rows=len(after),
    )
    return figures


async def _database(server: str, name: str) -> str:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return server.replace("/postgres?", f"/{name}?", 1)


def run(args: argparse.Namespace, server: str | None = None) -> dict[str, Any]:
    """One measurement on a new database of ``server`` (else an embedded PostgreSQL in a
    temporary folder)."""
    if server is not None:
        url = asyncio.run(_database(server, "frontline_registry_refold"))
        migrate.upgrade(url)
        return asyncio.run(measure(url, args))
    with tempfile.TemporaryDirectory(prefix="frontline-registry-refold-") as folder:
        embedded = start_embedded(Path(folder))
        try:
            return run(args, embedded)
        finally:
            stop_embedded(Path(folder))


def parser() -> argparse.ArgumentParser:
    """The command line."""
    line = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    line.add_argument("--places", type=int, default=5000, help="places with labelled claims")
    line.add_argument("--claims", type=int, default=20, help="labelled claims per place")
    line.add_argument("--others", type=int, default=2000, help="places of other sides")
    line.add_argument("--posters", type=int, default=4, help="clients appending meanwhile")
    line.add_argument("--window", type=float, default=3.0, help="seconds of quiet appends")
    line.add_argument("--no-save", action="store_true", help="print only, write no file")
    return line


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    figures = run(args)
    result = {
        "bench": "registry_refold",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": source_revision(),
        "machine": machine_info(str(figures.pop("postgres")), database_url_given=False),
        "command": "python -m bench.registry_refold " + " ".join(sys.argv[1:]),
        "figures": figures,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if not args.no_save:
        OUT.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        (OUT / f"registry-refold-{stamp}.json").write_text(text + "\n")
        (OUT / "registry-refold-latest.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
