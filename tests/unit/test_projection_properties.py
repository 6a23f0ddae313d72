"""Property tests of ``project_place``: what holds for every history, not just the examples."""

from __future__ import annotations

import itertools
import random
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import Casualties, Event, Relation, event_type
from contracts.timeline import Timeline
from service.domain.policy import CREDIBILITY_V1
from service.domain.projection import INFORMATIONAL as INFORMATIONAL_TYPES
from service.domain.projection import PlaceFold, changes_nothing, project_place, segment_at
from tests.unit.builders import (
    GOV,
    ISIS,
    SDF,
    casualties,
    event,
    link,
    retraction,
    source,
    strike,
    uid,
)

SETTINGS = settings(max_examples=150, deadline=None)

SIDES = (GOV, ISIS, SDF)
SOURCES = (
    source("Alpha", "B"),
    source("Bravo", "C", GOV),
    source("Charlie", "D", ISIS),
    source("Delta", "F"),
    source("Echo", "A", SDF),
)
CLAIMING = ("capture", "withdrawal", "control", "base_established", "base_evacuated")
STATUS = ("encirclement", "siege_lifted", "clash", "counter_attack")
INFORMATIONAL = ("advance", "strike", "equipment_loss")
HEDGES = ("confirmed", "reported", "claimed", "alleged", "unconfirmed")


@st.composite
def histories(
    draw: st.DrawFn, *, one_day: bool = False, retractions: bool = True, most: int = 12
) -> list[Event]:
    """A place's events: claims, statuses, noise and statements linking to earlier events.

    ``one_day``: every event on the same day (so all claims form one block). ``most``: the
    largest number of events.
    """
    events: list[Event] = []
    for n in range(draw(st.integers(1, most))):
        kinds: tuple[str, ...] = CLAIMING * 3 + STATUS + INFORMATIONAL
        if events:
            kinds += ("statement",) * 3
        kind = draw(st.sampled_from(kinds))
        day = 3 if one_day else draw(st.integers(1, 20))
        kw: dict[str, Any] = {
            "on": f"2017-06-{day:02d}",
            "precision": "day" if one_day else draw(st.sampled_from(("day", "day", "week"))),
            "by": draw(st.sampled_from(SOURCES)),
            "credibility": draw(st.integers(1, 6)),
            "hedge": draw(st.sampled_from(HEDGES)),
            "id": uid(n + 1),
        }
        side = draw(st.sampled_from(SIDES))
        if kind == "statement":
            target = draw(st.sampled_from(events))
            relations: tuple[Relation, ...] = ("confirms", "denies")
            if retractions:
                relations += ("retracts",)
            relation = draw(st.sampled_from(relations))
            if relation == "retracts":
                kw["by"] = target.source
            events.append(event("statement", links=[link(target, relation)], **kw))
            continue
        opponent = draw(st.none() | st.sampled_from(SIDES))
        events.append(event(kind, side, opponent=opponent, **kw))
    return events


def encode(timeline: Timeline) -> bytes:
    """The timeline's wire bytes."""
    return msgspec.json.encode(timeline)


def control_view(timeline: Timeline) -> list[tuple[object, ...]]:
    """Who holds the place, when, in what status, disputed or not."""
    return [
        (s.valid_from, s.valid_to, s.controller, s.status, s.status_by, s.disputed)
        for s in timeline.segments
    ]


@SETTINGS
@given(histories(), st.randoms(use_true_random=False))
def test_timeline_depends_only_on_the_set_of_events(
    events: list[Event], shuffler: random.Random
) -> None:
    """Shuffling (or repeating) the input never changes the timeline or its bytes."""
    expected = project_place(events)
    shuffled = [*events, *events[: len(events) // 2]]
    shuffler.shuffle(shuffled)
    again = project_place(shuffled)
    assert again == expected
    assert encode(again) == encode(expected) == encode(project_place(events))


@SETTINGS
@given(histories(), st.lists(st.tuples(st.booleans(), st.integers(1, 25)), max_size=5))
def test_informational_events_never_change_control(
    events: list[Event], noise: list[tuple[bool, int]]
) -> None:
    """Adding casualty reports and strikes leaves the timeline exactly as it was."""
    extra = [
        (casualties if is_casualties else strike)(on=f"2017-06-{day:02d}", id=uid(500 + n))
        for n, (is_casualties, day) in enumerate(noise)
    ]
    assert project_place([*events, *extra]) == project_place(events)


@SETTINGS
@given(
    histories(),
    st.lists(
        st.tuples(
            st.sampled_from(sorted(INFORMATIONAL_TYPES)),
            st.sampled_from([GOV, ISIS, None]),
            st.integers(1, 28),
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_informational_events_never_change_the_timeline(
    events: list[Event], noise: list[tuple[str, str | None, int]]
) -> None:
    """Every event ``changes_nothing`` accepts (each informational type, with or without a
    side, on any day) leaves the timeline exactly as it was: what lets the projector skip a
    commit that adds only such events to a place."""
    extra = [
        event(
            kind,
            GOV if kind == "advance" and side is None else side,  # an advance needs its side
            on=f"2017-06-{day:02d}",
            id=uid(700 + n),
            casualties=Casualties(killed=day) if kind == "casualties" else None,
            code="PLOVER:PROTEST" if kind == "other" else None,
        )
        for n, (kind, side, day) in enumerate(noise)
    ]
    assert all(changes_nothing(e) for e in extra)
    assert project_place([*events, *extra]) == project_place(events)


@SETTINGS
@given(histories(), st.data())
def test_retracting_an_event_is_as_if_it_never_was(
    events: list[Event], data: st.DataObject
) -> None:
    """A retraction by the event's own source gives the timeline of the log without it.

    (For an event no other event links to: a confirmation or denial stands on its own.)
    """
    linked = {ln.event for e in events for ln in e.relates_to}
    candidates = [e for e in events if e.id not in linked]
    target = data.draw(st.sampled_from(candidates))
    retracted = project_place([*events, retraction(target, id=uid(999))])
    without = project_place([e for e in events if e.id != target.id])
    assert control_view(retracted) == control_view(without)
    assert retracted == without


WEIGHT_ORDER = sorted(
    CREDIBILITY_V1.reliability, key=lambda grade: CREDIBILITY_V1.reliability[grade]
)


@SETTINGS
@given(histories(one_day=True, retractions=False), st.data())
def test_a_more_reliable_source_never_lowers_its_sides_support(
    events: list[Event], data: st.DataObject
) -> None:
    """Upgrading the reliability of one claim's source never lowers its side's support.

    Compared within one block (all events on one day): across blocks, which blocks exist can
    depend on earlier winners (ties, unexplained changes), so "that side's support" has no
    single place to be read from.
    """
    claims = [e for e in events if event_type(e) in CLAIMING]
    if not claims:
        return
    chosen = data.draw(st.sampled_from(claims))
    weight = CREDIBILITY_V1.reliability[chosen.source.reliability]
    better = [g for g in WEIGHT_ORDER if CREDIBILITY_V1.reliability[g] > weight]
    if not better:
        return
    grade = data.draw(st.sampled_from(better))
    upgraded = msgspec.structs.replace(
        chosen, source=msgspec.structs.replace(chosen.source, reliability=grade)
    )
    side = (
        chosen.side
        if event_type(chosen) in ("capture", "control", "base_established")
        else (chosen.opponent)
    )

    def support(timeline: Timeline) -> float:
        first = timeline.segments[0]
        if not first.disputed:
            assert first.controller == side
            return first.confidence / 100
        return next(s.support for s in first.supports if s.side == side)

    before = project_place(events)
    after = project_place([upgraded if e.id == chosen.id else e for e in events])
    assert support(after) >= support(before)


@SETTINGS
@given(histories())
def test_timeline_is_contiguous_minimal_and_consistent(events: list[Event]) -> None:
    """Segments are ordered, contiguous, open-ended at the end, and neighbours differ."""
    timeline = project_place(events)
    segments = timeline.segments
    for before, after in itertools.pairwise(segments):
        assert before.valid_to == after.valid_from
        assert msgspec.structs.replace(before, valid_from=after.valid_from, valid_to=None) != (
            msgspec.structs.replace(after, valid_to=None)
        )
    for segment in segments:
        assert segment.valid_to is None or segment.valid_from < segment.valid_to
        assert 0 <= segment.confidence <= 100
        assert segment.disputed == bool(segment.claims) == (segment.reason is not None)
        assert list(segment.events) == sorted(set(segment.events), key=lambda u: u.int)
        if segment.status in ("controlled", "unknown"):
            assert (segment.status == "unknown") == (segment.controller is None)
            assert segment.status_by is None
        else:
            assert segment.status_by is not None
        assert segment_at(timeline, segment.valid_from) == segment
    if segments:
        assert segments[-1].valid_to is None


@settings(max_examples=300, deadline=None)
@given(histories(most=40), st.data())
def test_adding_events_in_any_steps_gives_the_fold_of_all(
    events: list[Event], data: st.DataObject
) -> None:
    """A fold fed in steps (the log's commits; or any order at all) equals one fold of all.

    After every step the timeline is byte for byte ``project_place`` of the events so far,
    the segments it reports as refolded are the timeline's segments from ``since`` on, and
    every segment before ``since`` is one the timeline already had.
    """
    if data.draw(st.booleans()):
        events = data.draw(st.permutations(events))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(events)), max_size=len(events))))
    fold = PlaceFold()
    so_far: list[Event] = []
    for lo, hi in itertools.pairwise([0, *cuts, len(events)]):
        step = events[lo:hi]
        earlier = fold.timeline().segments
        refold = fold.add(step)
        so_far.extend(step)
        timeline = fold.timeline()
        assert encode(timeline) == encode(project_place(so_far))
        if refold is None:
            assert timeline.segments == earlier
            continue
        if refold.since is None:
            assert refold.segments == timeline.segments
            continue
        kept = [s for s in timeline.segments if s.valid_from < refold.since]
        assert [s for s in timeline.segments if s.valid_from >= refold.since] == list(
            refold.segments
        )
        assert all(s in earlier for s in kept)


def test_a_fold_that_failed_refuses_to_go_on() -> None:
    """An add that raises (two contents under one id) leaves the fold unusable rather than
    half changed: every later call says so."""
    fold = PlaceFold()
    fold.add([event("capture", GOV, on="2017-06-03", id=uid(1))])
    clash = event("capture", ISIS, on="2017-06-04", id=uid(1))
    with pytest.raises(ValueError, match="share the id"):
        fold.add([event("control", SDF, on="2017-06-05", id=uid(2)), clash])
    with pytest.raises(RuntimeError, match="failed"):
        fold.timeline()
    with pytest.raises(RuntimeError, match="failed"):
        fold.add([])
