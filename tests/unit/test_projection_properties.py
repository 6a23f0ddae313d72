"""Property tests of ``project_place``: what holds for every history, not just the examples."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import Casualties, Event, Relation, event_type
from contracts.timeline import Timeline
from service.domain.policy import CREDIBILITY_V2
from service.domain.projection import INFORMATIONAL as INFORMATIONAL_TYPES
from service.domain.projection import (
    Fact,
    PlaceFold,
    changes_nothing,
    in_force,
    project_place,
    segment_at,
)
from service.domain.records import source_key
from service.domain.time import valid_interval
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
ALIGNMENTS = ("neutral", *SIDES)


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
        if events and draw(st.integers(0, 9)) == 0:
            # Any report may also confirm or deny an earlier one (a clash that confirms a
            # capture both drives a status and makes a claim).
            target = draw(st.sampled_from(events))
            kw["links"] = [link(target, draw(st.sampled_from(("confirms", "denies"))))]
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
    CREDIBILITY_V2.reliability, key=lambda grade: CREDIBILITY_V2.reliability[grade]
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
    weight = CREDIBILITY_V2.reliability[chosen.source.reliability]
    better = [g for g in WEIGHT_ORDER if CREDIBILITY_V2.reliability[g] > weight]
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
        rebuilt = list(earlier)
        for part in refold.parts:
            inside = [
                s
                for s in rebuilt
                if (part.since is None or s.valid_from >= part.since)
                and (part.until is None or s.valid_from < part.until)
            ]
            assert [
                s
                for s in timeline.segments
                if (part.since is None or s.valid_from >= part.since)
                and (part.until is None or s.valid_from < part.until)
            ] == list(part.segments)
            at = (
                rebuilt.index(inside[0])
                if inside
                else len(
                    [s for s in rebuilt if part.since is not None and s.valid_from < part.since]
                )
            )
            rebuilt[at : at + len(inside)] = part.segments
        assert rebuilt == list(timeline.segments)


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


def claim_intervals(events: list[Event]) -> list[tuple[datetime, datetime]]:
    """The valid intervals of every in-force control claim of a history (rule 2): claiming
    events, and confirmations and denials of claiming events."""
    force = in_force(events)
    by_id = {e.id: e for e in events}
    found = []
    for e in events:
        assert e.id is not None
        if not force[e.id]:
            continue
        if event_type(e) in CLAIMING:
            found.append(valid_interval(e.occurred))
        for ln in e.relates_to:
            target = by_id.get(ln.event)
            if (
                ln.relation in ("confirms", "denies")
                and target is not None
                and event_type(target) in CLAIMING
            ):
                found.append(valid_interval(target.occurred))
    return found


def clipped(timeline: Timeline, until: datetime) -> list[tuple[object, ...]]:
    """The timeline before ``until``: each segment's content with its end cut there."""
    return [
        (
            s.valid_from,
            until if s.valid_to is None or s.valid_to > until else s.valid_to,
            msgspec.structs.replace(s, valid_from=until, valid_to=None),
        )
        for s in timeline.segments
        if s.valid_from < until
    ]


@st.composite
def new_claims(draw: st.DrawFn, events: list[Event]) -> Event:
    """A new control claim: a claiming event on some day, or a confirmation or denial of one
    of the history's claiming events."""
    targets = [e for e in events if event_type(e) in CLAIMING]
    kind = draw(st.sampled_from(["own", "own", "link"] if targets else ["own"]))
    by = draw(st.sampled_from([*SOURCES, source("Newcomer", "B")]))
    if kind == "link":
        target = draw(st.sampled_from(targets))
        relation: Relation = draw(st.sampled_from(("confirms", "denies")))
        return event("statement", links=[link(target, relation)], by=by, id=uid(900))
    return event(
        draw(st.sampled_from(CLAIMING)),
        draw(st.sampled_from(SIDES)),
        opponent=draw(st.none() | st.sampled_from(SIDES)),
        on=f"2017-06-{draw(st.integers(1, 25)):02d}",
        precision=draw(st.sampled_from(("day", "day", "week"))),
        by=by,
        id=uid(900),
    )


@settings(max_examples=300, deadline=None)
@given(histories(most=25), st.data())
def test_a_new_claim_never_changes_the_time_before_the_last_covered_piece(
    events: list[Event], data: st.DataObject
) -> None:
    """A new claim over [s, e) never changes the timeline before the end of the last piece,
    earlier than s, that another claim covers (DESIGN 4: disputes never chain; the
    unexplained change reaches back over uncovered time only)."""
    claim = data.draw(new_claims(events))
    start, _ = claim_intervals([*events, claim])[-1] if claim.relates_to else (None, None)
    if start is None:
        start, _ = valid_interval(claim.occurred)
    earlier = [min(end, start) for begin, end in claim_intervals(events) if begin < start]
    reach = max(earlier, default=start)
    assert clipped(project_place([*events, claim]), reach) == clipped(project_place(events), reach)


@settings(max_examples=300, deadline=None)
@given(histories(most=25), st.data())
def test_an_agreeing_claim_from_a_new_source_never_lowers_the_holders_confidence(
    events: list[Event], data: st.DataObject
) -> None:
    """A claim giving the place to the side that holds it on a day (a control claim, a capture,
    a base, a withdrawal to it; any grade, credibility, hedge and alignment), from a source not
    yet heard, keeps that side in control that day and never lowers its confidence."""
    timeline = project_place(events)
    days = [
        (d, s)
        for d in range(1, 29)
        if (s := segment_at(timeline, datetime(2017, 6, d, tzinfo=UTC))) is not None
        and s.controller is not None
    ]
    if not days:
        return
    d, held = data.draw(st.sampled_from(days))
    newcomer = source(
        "Newcomer", data.draw(st.sampled_from("ABCDEF")), data.draw(st.sampled_from(ALIGNMENTS))
    )
    kw: dict[str, Any] = {
        "on": f"2017-06-{d:02d}",
        "by": newcomer,
        "id": uid(901),
        "credibility": data.draw(st.integers(1, 6)),
        "hedge": data.draw(st.sampled_from(HEDGES)),
    }
    kind = data.draw(st.sampled_from(("control", "capture", "base_established", "withdrawal")))
    if kind == "withdrawal":
        leaver = data.draw(st.sampled_from([s for s in SIDES if s != held.controller]))
        agreeing = event("withdrawal", leaver, opponent=held.controller, **kw)
    else:
        agreeing = event(kind, held.controller, **kw)
    after = segment_at(project_place([*events, agreeing]), datetime(2017, 6, d, tzinfo=UTC))
    assert after is not None
    assert after.controller == held.controller
    assert after.confidence >= held.confidence


@SETTINGS
@given(histories(most=30))
def test_a_segment_lists_at_most_one_claim_per_source_and_side(events: list[Event]) -> None:
    """DESIGN 4, rule 8: a segment lists at most one claim per (source, side) among the
    claims that decided it, and its events are the winner's counted claims (at most one per
    source) plus its status events: never more with the length of a dispute or the history."""
    sources = {source_key(e.source.name) for e in events}
    status_events = {
        e.id for e in events if event_type(e) in ("encirclement", "clash", "counter_attack")
    }
    for segment in project_place(events).segments:
        listed = [(source_key(c.source), c.side) for c in segment.claims]
        assert len(listed) == len(set(listed))
        claiming = [e for e in segment.events if e not in status_events]
        assert len(claiming) <= len(sources)
        assert sum(s.sources for s in segment.supports) == len(segment.claims)
        assert all(s.claims >= s.sources for s in segment.supports)


@SETTINGS
@given(histories(most=20))
def test_facts_read_from_payloads_fold_as_the_events_do(events: list[Event]) -> None:
    """A rebuild reads only what the fold needs from each stored payload
    (``Fact.from_payload``): the same timeline, byte for byte, as the decoded events give."""
    facts = [Fact.from_payload(msgspec.json.encode(e)) for e in events]
    assert facts == [Fact.of(e) for e in events]
    fold = PlaceFold()
    fold.add(facts)
    assert encode(fold.timeline()) == encode(project_place(events))
