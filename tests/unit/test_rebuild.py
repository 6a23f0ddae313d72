"""The rebuild's pure parts (``service.projections.rebuild``): how the log is cut into work,
the catch-up's replay, the messages to and from the worker processes."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import Event
from service.domain.bitemporal import OpenRows, history
from service.domain.policy import SERVED, superseded
from service.domain.projection import PlaceFold
from service.projections.rebuild import (
    MAX_WORKERS,
    MIN_RANGE_EVENTS,
    RANGES_PER_WORKER,
    CatchUp,
    Done,
    FoldRange,
    Start,
    _Process,
    plan_ranges,
    policy_named,
    replay,
    worker_count,
    workers_for,
)
from service.projections.timelines import TimelineProjector, _Held
from service.store.db import Connector
from tests.unit.builders import GOV, PLACE, control
from tests.unit.test_bitemporal import logs

SETTINGS = settings(max_examples=150, deadline=None)


@st.composite
def commits(draw: st.DrawFn) -> list[tuple[int, list[Event]]]:
    """A place's log cut into commits at increasing positions."""
    events = draw(logs())
    cuts = (
        sorted(draw(st.sets(st.integers(1, len(events) - 1), max_size=8)))
        if len(events) > 1
        else []
    )
    groups = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    positions = sorted(
        draw(st.sets(st.integers(1, 10_000), min_size=len(groups), max_size=len(groups)))
    )
    return list(zip(positions, groups, strict=True))


@SETTINGS
@given(log=commits())
def test_the_catch_ups_replay_is_history(log: list[tuple[int, list[Event]]]) -> None:
    """``replay`` (which keeps the fold for the commits after) gives the same rows, known
    ranges included, as ``history`` (which the first pass uses): a place caught up with
    from its whole log gets the rows a rebuild alone would give it."""
    rows, replayed = replay(PLACE, log, SERVED)
    assert sorted(rows, key=lambda h: (h.known_from, h.row.valid_from)) == history(
        PLACE, log, SERVED
    )
    assert len(replayed) == sum(len(events) for _, events in log)
    assert replayed.rows.rows == [h.row for h in rows if h.known_to is None]


@st.composite
def places(draw: st.DrawFn) -> list[tuple[str, int]]:
    """Places in id order with their event counts, some much busier than the rest."""
    ids = sorted(draw(st.sets(st.text("abcdefgh", min_size=1, max_size=4), max_size=60)))
    counts = st.one_of(st.integers(1, 40), st.integers(1, 5_000))
    return [(place, draw(counts)) for place in ids]


def _holds(low: str | None, high: str | None, place: str) -> bool:
    return (low is None or place >= low) and (high is None or place < high)


@SETTINGS
@given(listed=places(), workers=st.integers(1, 4), unlisted=st.text("abcdefghz", max_size=5))
def test_ranges_cover_every_place_once_largest_first(
    listed: list[tuple[str, int]], workers: int, unlisted: str
) -> None:
    """Every place, listed or not (a place registered after the list was read), falls in
    exactly one range; ranges come largest first; a place busier than a range's share is a
    range of its own; every range folds up to the snapshot."""
    ranges = plan_ranges(listed, workers, 77)
    assert all(r.upto == 77 for r in ranges)
    for place in [p for p, _ in listed] + [unlisted]:
        assert sum(_holds(r.low, r.high, place) for r in ranges) == 1, place
    sizes = [sum(n for p, n in listed if _holds(r.low, r.high, p)) for r in ranges]
    assert sizes == sorted(sizes, reverse=True)
    total = sum(n for _, n in listed)
    share = max(-(-total // (workers * RANGES_PER_WORKER)), MIN_RANGE_EVENTS)
    for place, count in listed:
        if count > share:
            (alone,) = [r for r in ranges if _holds(r.low, r.high, place)]
            assert [p for p, _ in listed if _holds(alone.low, alone.high, p)] == [place]


def test_a_large_log_is_cut_into_several_ranges_per_worker() -> None:
    """20,000 places of 50 events each, two workers: about 16 ranges each, of equal work."""
    listed = [(f"p{k:05d}", 50) for k in range(20_000)]
    ranges = plan_ranges(listed, 2, 10**6)
    assert 2 * RANGES_PER_WORKER <= len(ranges) <= 2 * RANGES_PER_WORKER + 1
    sizes = [sum(n for p, n in listed if _holds(r.low, r.high, p)) for r in ranges]
    assert max(sizes) <= 31_250 + 50


def test_messages_cross_to_a_worker_and_back_unchanged() -> None:
    """The messages survive msgpack both ways (the worker decodes a tagged union)."""
    connector = Connector(url="postgresql://u:p@h/db", server_settings={"role": "r"}, timeout=3.0)
    sent = [
        Start(
            connector=connector, policy=SERVED.name, policy_version=SERVED.version, keep_events=9
        ),
        FoldRange(low=None, high="sy-m", upto=12),
        CatchUp(places=["a", "b"], upto=13, snapshot=9),
    ]
    decoder = msgspec.msgpack.Decoder(Start | FoldRange | CatchUp)
    assert [decoder.decode(msgspec.msgpack.encode(m)) for m in sent] == sent
    done = Done(rows=-3, events=4, peak_kib=5, cold=1, warm=2)
    assert msgspec.msgpack.Decoder(Done).decode(msgspec.msgpack.encode(done)) == done


def test_a_worker_finds_the_policy_by_name_and_version() -> None:
    """The served policy is found by its name and version; another version is not."""
    assert policy_named(SERVED.name, SERVED.version) is SERVED
    with pytest.raises(LookupError, match="version 99"):
        policy_named(SERVED.name, 99)
    renamed = dataclasses.replace(SERVED, name="credibility-test")
    with pytest.raises(LookupError):
        policy_named(renamed.name, renamed.version)


async def test_forgetting_the_fold_cache_frees_it_a_place_at_a_time() -> None:
    """Regression test (at 1,000,000 events the swap's ``forget()`` freed a million events'
    folds in one go and held the event loop for about 2 s): the cache is empty at once, and
    the folds are freed in the background, one place per turn of the event loop."""
    projector = TimelineProjector()
    for place in ("a", "b", "c"):
        fold = PlaceFold(SERVED)
        fold.add([control(GOV, place=place)])
        projector._cache[place] = _Held(1, fold, OpenRows())
    held = projector._cache
    projector.forget()
    assert projector.cached_places == 0
    (freeing,) = projector._freeing
    await asyncio.sleep(0)  # the task starts and frees one place
    assert list(held) == ["b", "c"]
    await freeing
    assert not held
    assert not projector._freeing


async def test_a_worker_that_cannot_be_told_how_to_start_is_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression test (a failed first message left the worker process running, waiting on
    its stdin for ever): when sending the Start message fails, the process is ended and
    waited for before the error rises."""
    started: list[asyncio.subprocess.Process] = []
    spawn = asyncio.create_subprocess_exec

    async def recorded(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        process = await spawn(*args, **kwargs)
        started.append(process)
        return process

    async def broken(self: _Process, message: msgspec.Struct) -> None:
        raise BrokenPipeError("the pipe broke")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recorded)
    monkeypatch.setattr(_Process, "_send", broken)
    connector = Connector(url="postgresql://u:p@h/db", server_settings={}, timeout=3.0)
    start = Start(connector=connector, policy=SERVED.name, policy_version=SERVED.version,
                  keep_events=1)  # fmt: skip
    with pytest.raises(BrokenPipeError):
        await _Process.start(start)
    (process,) = started
    assert process.returncode is not None, "the worker process still runs"


def test_a_rebuild_has_at_most_eight_workers_and_leaves_connections_to_the_service() -> None:
    """Regression test (one worker per core, whatever the cores and the connections left:
    a 64-core machine opened 64 connections, and a worker's TooManyConnectionsError failed
    the rebuild): at most MAX_WORKERS, and no more than leave the spare connections free;
    always one."""
    assert MAX_WORKERS == 8
    assert workers_for(64) == 8
    assert workers_for(3) == 3
    assert 1 <= workers_for(0) <= 8
    assert worker_count(8, free_connections=100, spare=10) == 8
    assert worker_count(8, free_connections=14, spare=10) == 4
    assert worker_count(8, free_connections=5, spare=10) == 1
    assert worker_count(2, free_connections=100, spare=10) == 2


def test_only_rows_of_a_policy_known_to_be_older_are_superseded() -> None:
    """A retired policy (any version) and an earlier version of the served one are older
    than the served policy; the served policy itself, a later version of it and a policy
    this code never heard of are not (they may be a later service version's)."""
    assert superseded("credibility-v1", 1)
    assert superseded("credibility-v1", 7)
    assert superseded(SERVED.name, SERVED.version - 1)
    assert not superseded(SERVED.name, SERVED.version)
    assert not superseded(SERVED.name, SERVED.version + 1)
    assert not superseded("credibility-v3", 1)
