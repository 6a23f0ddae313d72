"""The fold alone, in one process, on the benchmark workload: the figures that explain the
projections' benchmarks (docs/benchmarks.md, docs/projection.md).

    python -m bench.fold adds --events 200000       # full fold vs one add at a time
    python -m bench.fold history --span 1000000     # rows and bytes of a dense history
    python -m bench.fold listing --events 1000000   # the busiest timelines: bytes a segment
    python -m bench.fold memory --events 100000     # memory of held folds and rows
    python -m bench.fold rebuild --events 100000    # a rebuild's fold alone: us an event

``--span`` is the log size over which valid time runs from 2011 to 2024: 1,000,000 gives the
density of the 1M benchmark to its first ``--events`` events.
"""

from __future__ import annotations

import argparse
import collections
import gc
import resource
import sys
import time
from collections.abc import Sequence

import msgspec

from bench.workload import Workload
from contracts.events import Event, event_decoder
from service.domain.bitemporal import OpenRows, history, rows_of
from service.domain.policy import CREDIBILITY_V2
from service.domain.projection import PlaceFold, project_place
from service.domain.projection.facts import Fact

COMMIT: int = 10_000
"""Events a commit of the NDJSON import holds (FRONTLINE_IMPORT_CHUNK)."""


def _events(count: int, span: int) -> list[Event]:
    workload = Workload(seed=1, stream=0, span=span)
    return [event_decoder.decode(line) for line in workload.lines(count)]


def _by_place(events: list[Event]) -> dict[str, list[Event]]:
    places: dict[str, list[Event]] = collections.defaultdict(list)
    for event in events:
        places[event.place.id].append(event)
    return places


def _busiest(places: dict[str, list[Event]], top: int) -> list[str]:
    return sorted(places, key=lambda p: -len(places[p]))[:top]


def adds(events: list[Event], top: int) -> None:
    places = _by_place(events)
    for place in _busiest(places, top):
        mine = places[place]
        started = time.perf_counter()
        whole = project_place(mine)
        full = time.perf_counter() - started
        fold, worst = PlaceFold(), 0.0
        started = time.perf_counter()
        for event in mine:
            one = time.perf_counter()
            fold.add([event])
            worst = max(worst, time.perf_counter() - one)
        each = (time.perf_counter() - started) / len(mine)
        assert fold.timeline() == whole
        print(
            f"{place}: {len(mine)} events; full fold {full:.3f} s "
            f"({full / len(mine) * 1e6:.1f} us an event); one at a time {each * 1e3:.3f} ms "
            f"an add (worst {worst * 1e3:.1f} ms)"
        )


def dense_history(events: list[Event], top: int) -> None:
    commits: dict[str, list[tuple[int, list[Event]]]] = collections.defaultdict(list)
    for index, event in enumerate(events):
        grouped = commits[event.place.id]
        if grouped and grouped[-1][0] == index // COMMIT:
            grouped[-1][1].append(event)
        else:
            grouped.append((index // COMMIT, [event]))
    for place in sorted(commits, key=lambda p: -sum(len(c[1]) for c in commits[p]))[:top]:
        started = time.perf_counter()
        rows = history(place, commits[place], CREDIBILITY_V2)
        took = time.perf_counter() - started
        size = sum(len(h.row.body) for h in rows)
        count = sum(len(c[1]) for c in commits[place])
        print(f"{place}: {count} events, {len(rows)} rows, {size / 1e6:.0f} MB, {took:.1f} s")


def listing(events: list[Event], top: int) -> None:
    """The busiest places' timelines: segments, what they list, JSON bytes per segment and
    per event (the goals: at most 2 KB a segment on average, and no more bytes an event at
    1,000,000 events than at 100,000)."""
    places = _by_place(events)
    for place in _busiest(places, top):
        mine = places[place]
        timeline = project_place(mine)
        segments = timeline.segments
        disputed = sum(s.disputed for s in segments)
        listed = sum(len(s.claims) for s in segments)
        named = sum(len(s.events) for s in segments)
        size = len(msgspec.json.encode(timeline))
        print(
            f"{place}: {len(mine)} events, {len(segments)} segments ({disputed} disputed), "
            f"{listed / max(len(segments), 1):.1f} claims and {named / max(len(segments), 1):.1f} "
            f"events listed a segment; {size / max(len(segments), 1):,.0f} bytes of JSON a "
            f"segment, {size / len(mine):,.0f} an event"
        )


def rebuild_fold(count: int, span: int, rounds: int) -> None:
    """What a rebuild's workers do between the cursor and the COPY, in one process: each
    place's stored payloads read as facts (``Fact.from_payload``) and replayed commit by
    commit (``history``, commits of ``COMMIT`` events), the rows' records built; best of
    ``rounds``, in microseconds of this process's CPU an event (wall time on a shared
    machine moves 2x between runs), next to the baseline's decode into a dict."""
    workload = Workload(seed=1, stream=0, span=span)
    lines = list(workload.lines(count))
    places = [event_decoder.decode(line).place.id for line in lines]
    order = sorted(range(count), key=lambda i: (places[i], i))
    rows = [(places[i], (i // COMMIT + 1) * COMMIT, lines[i]) for i in order]
    best_fold = best_base = float("inf")
    clock = time.process_time  # this process's CPU: what other processes' load moves least
    written = 0
    for _ in range(rounds):
        started = clock()
        latest: dict[str, tuple[object, object]] = {}
        for place_id, _commit, payload in rows:
            event = msgspec.json.decode(payload)
            latest[place_id] = (event["type"], event.get("side"))
        best_base = min(best_base, clock() - started)
        started = clock()
        written = 0
        place: str | None = None
        commits: list[tuple[int, list[Fact]]] = []
        decode = Fact.from_payload
        for place_id, commit, payload in rows:
            if place_id != place:
                if place is not None:
                    written += len(history(place, commits, CREDIBILITY_V2, None, count))
                place, commits = place_id, []
            if commits and commits[-1][0] == commit:
                commits[-1][1].append(decode(payload))
            else:
                commits.append((commit, [decode(payload)]))
        if place is not None:
            written += len(history(place, commits, CREDIBILITY_V2, None, count))
        best_fold = min(best_fold, clock() - started)
    print(
        f"{count} events, {len(set(places))} places, {written} rows: fold "
        f"{best_fold / count * 1e6:.2f} us of CPU an event ({best_fold:.2f} s), decode into a "
        f"dict {best_base / count * 1e6:.2f} us; best of {rounds}"
    )


def memory(events: list[Event]) -> None:
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    held = []
    for place, mine in _by_place(events).items():
        fold = PlaceFold()
        fold.add(mine)
        segments = fold.timeline().segments
        held.append((fold, OpenRows(rows_of(place, segments), [0] * len(segments))))
    gc.collect()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"decoded events {before / len(events):.2f} KB each; folds and rows "
        f"{(after - before) / len(events):.2f} KB an event more ({len(held)} places)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fold", description=__doc__)
    parser.add_argument("what", choices=("adds", "history", "listing", "memory", "rebuild"))
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--span", type=int, default=None, help="default: --events")
    parser.add_argument("--top", type=int, default=3, help="how many of the busiest places")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (rebuild)")
    args = parser.parse_args(argv)
    if args.what == "rebuild":
        rebuild_fold(args.events, args.span or args.events, args.rounds)
        return 0
    events = _events(args.events, args.span or args.events)
    if args.what == "adds":
        adds(events, args.top)
    elif args.what == "history":
        dense_history(events, args.top)
    elif args.what == "listing":
        listing(events, args.top)
    else:
        memory(events)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
