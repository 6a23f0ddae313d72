"""Example tests of ``project_place`` under policy ``credibility-v2`` (DESIGN section 4).

Each test pins one rule, one worked case of DESIGN section 4, or one choice written down in
``docs/projection.md``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from fractions import Fraction

import msgspec
import pytest

from contracts.events import Event, Relation
from contracts.timeline import Segment, Timeline
from service.domain.policy import CREDIBILITY_V2, SERVED
from service.domain.projection import (
    PlaceFold,
    in_force,
    project_place,
    segment_at,
)
from service.domain.records import source_key
from tests.unit.builders import (
    GOV,
    ISIS,
    SDF,
    base_established,
    base_evacuated,
    capture,
    casualties,
    clash,
    confirmation,
    control,
    counter_attack,
    denial,
    encirclement,
    event,
    link,
    retraction,
    siege_lifted,
    source,
    statement,
    strike,
    uid,
    withdrawal,
)

# Sources used throughout. Scores with credibility 3 and hedge "reported" (0.6 x 0.8):
NEUTRAL_C = source("South Front", "C")  # 0.6 -> 0.288
SANA = source("SANA", "C", GOV)  # 0.288 x0.5 for gov, x1.5 against gov
AMAQ = source("Amaq", "D", ISIS)  # 0.4 -> 0.192; x0.5 = 0.096 for isis
REUTERS = source("Reuters", "B")  # 0.8 -> 0.384


def day(text: str) -> datetime:
    """Midnight UTC of a 2017 day given as MM-DD."""
    return datetime.fromisoformat(f"2017-{text}T00:00:00+00:00")


def on(text: str) -> str:
    """A 2017 date given as MM-DD, as ``occurred.start`` text."""
    return f"2017-{text}"


def control_view_of(s: Segment) -> tuple[object, ...]:
    """Who holds the place, when, in what status, disputed or not."""
    return (s.valid_from, s.valid_to, s.controller, s.status, s.status_by, s.disputed)


def only(timeline: Timeline) -> Segment:
    """The single segment of a timeline."""
    assert len(timeline.segments) == 1, timeline.segments
    return timeline.segments[0]


def control_view(timeline: Timeline) -> list[tuple[object, ...]]:
    """The parts of a timeline that say who holds the place, when, and how."""
    return [control_view_of(s) for s in timeline.segments]


# ---------------------------------------------------------------------------------------------
# The timeline and its helpers


def test_timeline_names_policy_and_version() -> None:
    """Every timeline carries the policy's name and version."""
    timeline = project_place([capture(GOV, by=NEUTRAL_C)])
    assert (timeline.policy, timeline.policy_version) == ("credibility-v2", 1)
    assert SERVED is CREDIBILITY_V2


def test_no_events_no_segments() -> None:
    """A place without events has an empty timeline."""
    assert project_place([]).segments == ()


def test_no_segment_before_the_first_claim() -> None:
    """Informational events alone make no segment; the first claim, of control or of status
    (DESIGN section 2: a claim asserts a place's control or status), opens one."""
    informational = [strike(ISIS, on=on("05-01")), casualties(on=on("06-02"))]
    assert project_place(informational).segments == ()
    first = project_place([*informational, capture(GOV, on=on("06-03"))]).segments[0]
    assert first.valid_from == day("06-03")
    besieged = project_place([*informational, encirclement(GOV, on=on("06-02"))]).segments
    assert besieged[0].valid_from == day("06-02")
    assert (besieged[0].controller, besieged[0].status, besieged[0].status_by) == (
        None,
        "encircled",
        GOV,
    )


def test_segment_at_is_half_open_and_needs_an_aware_time() -> None:
    """``segment_at`` finds the segment holding a time: [from, to); before the start: None."""
    timeline = project_place(
        [capture(GOV, on=on("06-03"), by=SANA), capture(ISIS, on=on("06-10"), by=AMAQ)]
    )
    assert segment_at(timeline, day("06-02")) is None
    gov = segment_at(timeline, day("06-03"))
    assert gov is not None
    assert gov.controller == GOV
    isis = segment_at(timeline, day("06-10"))
    assert isis is not None
    assert isis.controller == ISIS
    assert segment_at(timeline, datetime(2030, 1, 1, tzinfo=UTC)) == isis
    with pytest.raises(ValueError, match="timezone-aware"):
        segment_at(timeline, datetime(2017, 6, 5))  # a naive time, on purpose


def test_events_need_ids_and_distinct_content_per_id() -> None:
    """Stored events carry ids; an id reused for other content is refused, a repeat ignored."""
    no_id = msgspec.structs.replace(capture(GOV), id=None)
    with pytest.raises(ValueError, match="no id"):
        project_place([no_id])
    first = capture(GOV, id=1)
    other = capture(ISIS, id=1)
    with pytest.raises(ValueError, match="share the id"):
        project_place([first, other])
    assert project_place([first, first]) == project_place([first])


def test_source_key_ignores_case_and_whitespace() -> None:
    """Source identity is the name without case or any whitespace."""
    assert source_key(" South  Front ") == source_key("south front") == "southfront"
    assert source_key("SouthFront") == "southfront"


# ---------------------------------------------------------------------------------------------
# Rule 1: in force


def test_retracted_event_is_out_of_force_and_has_no_effect() -> None:
    """A retraction by the event's own source takes it out of force; nothing is left."""
    report = capture(GOV, by=NEUTRAL_C, id=1)
    retract = retraction(report, id=2)
    assert in_force([report, retract]) == {uid(1): False, uid(2): True}
    assert project_place([report, retract]).segments == ()


@pytest.mark.parametrize("relation", ["corrects", "supersedes"])
def test_correction_and_supersession_replace_the_original(relation: Relation) -> None:
    """``corrects`` and ``supersedes`` by the same source put the original out of force."""
    wrong = capture(GOV, on=on("06-03"), by=NEUTRAL_C, id=1)
    right = capture(
        GOV,
        on=on("06-04"),
        by=NEUTRAL_C,
        links=[link(wrong, relation)],
        id=2,
    )
    segment = only(project_place([wrong, right]))
    assert segment.valid_from == day("06-04")
    assert segment.events == (uid(2),)


def test_retraction_by_another_source_is_ignored() -> None:
    """Only the same source can retract; another source's retract link changes nothing."""
    report = capture(GOV, by=NEUTRAL_C, id=1)
    foreign = statement(link(report, "retracts"), by=REUTERS, id=2)
    assert in_force([report, foreign]) == {uid(1): True, uid(2): True}
    assert only(project_place([report, foreign])).controller == GOV


def test_same_source_matches_across_case_and_spacing() -> None:
    """ "south  FRONT" is the same source as "South Front" for a retraction."""
    report = capture(GOV, by=NEUTRAL_C, id=1)
    retract = statement(link(report, "retracts"), by=source("south  FRONT", "C"), id=2)
    assert in_force([report, retract])[uid(1)] is False


def test_retraction_of_a_retraction_restores_the_original() -> None:
    """Retracting a retraction puts the original back in force."""
    report = capture(GOV, by=NEUTRAL_C, id=1)
    first = retraction(report, id=2)
    second = retraction(first, id=3)
    assert in_force([report, first, second]) == {uid(1): True, uid(2): False, uid(3): True}
    restored = only(project_place([report, first, second]))
    assert (restored.controller, restored.confidence, restored.events) == (GOV, 29, (uid(1),))
    third = retraction(second, id=4)
    assert project_place([report, first, second, third]).segments == ()


def test_confirmation_stands_after_the_confirmed_event_is_retracted() -> None:
    """A confirmation keeps claiming the confirmed event's side after a retraction of it."""
    report = capture(GOV, by=NEUTRAL_C, id=1)
    confirm = confirmation(report, REUTERS, id=2)
    segment = only(project_place([report, confirm, retraction(report, id=3)]))
    assert segment.controller == GOV
    assert segment.events == (uid(2),)
    assert segment.confidence == 38  # Reuters alone: 0.8 x 0.6 x 0.8 = 0.384


def test_denial_stands_after_the_denied_event_is_retracted() -> None:
    """A denial keeps its claim (for the displaced side) after the denied event is retracted."""
    report = capture(GOV, opponent=ISIS, by=NEUTRAL_C, id=1)
    deny = denial(report, REUTERS, id=2)
    segment = only(project_place([report, deny, retraction(report, id=3)]))
    assert (segment.controller, segment.disputed, segment.events) == (ISIS, False, (uid(2),))


def test_links_to_unknown_events_are_ignored() -> None:
    """A link to an id that is not among the place's events has no effect."""
    report = capture(GOV, by=NEUTRAL_C, id=1)
    dangling = [
        statement(link(uid(99), "retracts"), by=NEUTRAL_C, id=2),
        statement(link(uid(98), "denies"), by=AMAQ, id=3),
    ]
    assert project_place([report, *dangling]) == project_place([report])


def test_a_retraction_cycle_is_refused() -> None:
    """Links point to earlier events; a cycle of retractions cannot be evaluated."""
    a = statement(link(uid(2), "retracts"), by=NEUTRAL_C, id=1)
    b = statement(link(uid(1), "retracts"), by=NEUTRAL_C, id=2)
    with pytest.raises(ValueError, match="cycle"):
        in_force([a, b])


# ---------------------------------------------------------------------------------------------
# Rule 2: claims


@pytest.mark.parametrize("make", [capture, base_established, control])
def test_capture_base_and_control_claim_their_side(make: Callable[..., Event]) -> None:
    """``capture``, ``base_established`` and ``control`` give the place to ``side``."""
    segment = only(project_place([make(SDF, by=NEUTRAL_C)]))
    assert (segment.controller, segment.status) == (SDF, "controlled")


@pytest.mark.parametrize("make", [withdrawal, base_evacuated])
def test_leaving_gives_the_place_to_the_opponent_or_to_no_one(
    make: Callable[..., Event],
) -> None:
    """``withdrawal`` and ``base_evacuated`` claim ``opponent``, or no controller."""
    to_gov = only(project_place([make(ISIS, opponent=GOV, by=NEUTRAL_C)]))
    assert (to_gov.controller, to_gov.status) == (GOV, "controlled")
    to_nobody = only(project_place([make(ISIS, by=NEUTRAL_C)]))
    assert (to_nobody.controller, to_nobody.status) == (None, "unknown")


def test_a_confirmation_is_a_claim_scored_by_the_confirming_source() -> None:
    """A confirmation adds its source's support to the confirmed side (noisy-OR)."""
    report = capture(GOV, by=NEUTRAL_C, id=1)  # 0.288
    confirm = confirmation(report, REUTERS, id=2)  # 0.384
    segment = only(project_place([report, confirm]))
    # 1 - (1 - 0.288)(1 - 0.384) = 0.561408
    assert segment.confidence == 56
    assert segment.events == (uid(1), uid(2))


def test_a_confirmed_withdrawal_claims_for_its_opponent() -> None:
    """Confirming a withdrawal confirms the side the place passes to."""
    report = withdrawal(ISIS, opponent=GOV, by=NEUTRAL_C, id=1)
    segment = only(project_place([report, confirmation(report, REUTERS, id=2)]))
    assert segment.controller == GOV
    assert segment.events == (uid(1), uid(2))


def test_a_denial_claims_for_the_named_opponent_the_event_would_displace() -> None:
    """Denying "gov captured it from ISIS" claims ISIS over the capture's interval."""
    report = capture(GOV, opponent=ISIS, by=NEUTRAL_C, id=1)  # 0.288
    deny = denial(report, REUTERS, id=2)  # 0.384 for isis
    (segment,) = project_place([report, deny]).segments
    assert (segment.valid_from, segment.valid_to) == (day("06-03"), None)
    assert (segment.controller, segment.disputed) == (ISIS, True)  # open: nothing settled it
    assert [(c.side, c.link, c.about) for c in segment.claims] == [
        (ISIS, "denies", uid(1)),
        (GOV, "direct", None),
    ]


def test_a_denial_claims_for_the_controller_before_when_no_opponent_is_named() -> None:
    """Without ``opponent``, the displaced controller is whoever held the place just before
    the denied event's interval (in the timeline itself: denials before it included)."""
    before = capture(ISIS, on=on("05-01"), by=NEUTRAL_C, id=1)
    report = capture(GOV, on=on("06-03"), by=NEUTRAL_C, id=2)
    deny = denial(report, REUTERS, id=3)
    segment = segment_at(project_place([before, report, deny]), day("06-03"))
    assert segment is not None
    assert [(c.side, c.link) for c in segment.claims] == [(ISIS, "denies"), (GOV, "direct")]
    assert segment.controller == ISIS


def test_a_denial_of_the_first_claim_is_a_claim_for_no_controller() -> None:
    """A denied event that displaced no one makes the denial a claim for "no controller"."""
    report = capture(GOV, by=NEUTRAL_C, id=1)
    (segment,) = project_place([report, denial(report, REUTERS, id=2)]).segments
    assert (segment.controller, segment.status, segment.disputed) == (None, "unknown", True)
    assert (segment.held_since, segment.confidence) == (None, 38)


def test_links_to_events_without_a_control_claim_claim_nothing() -> None:
    """Confirming or denying a strike, clash or statement says nothing about control."""
    hit = strike(ISIS, id=1)
    fight = clash(ISIS, id=2)
    events: list[Event] = [
        hit,
        fight,
        confirmation(hit, REUTERS, id=3),
        denial(fight, REUTERS, id=4),
    ]
    segments = project_place(events).segments
    assert {s.controller for s in segments} == {None}
    assert segments == project_place([hit, fight]).segments


def test_alignment_uses_the_side_the_capture_takes_the_place_from() -> None:
    """A gov-aligned source reporting an ISIS capture from gov reports against interest."""
    held = capture(GOV, on=on("05-01"), by=REUTERS)
    lost = capture(ISIS, on=on("06-03"), by=SANA, id=2)  # no opponent: displaced gov
    segment = segment_at(project_place([held, lost]), day("06-03"))
    assert segment is not None
    assert segment.controller == ISIS
    # 0.6 x 0.6 x 0.8 x 1.5 = 0.432
    assert segment.confidence == 43
    assert segment.basis == "assessed"


# ---------------------------------------------------------------------------------------------
# DESIGN section 4's worked cases, one test each (the table, row by row)

AGENCY_C = source("Agency C", "C")


def summary(timeline: Timeline) -> list[tuple[object, ...]]:
    """from, to, controller, confidence, basis, disputed, held_since: the worked cases' columns."""
    return [
        (
            s.valid_from,
            s.valid_to,
            s.controller,
            s.confidence,
            s.basis,
            s.disputed,
            s.held_since,
        )
        for s in timeline.segments
    ]


def test_worked_case_corroboration() -> None:
    """Agreeing reports on later days corroborate: one growing confidence (al-Sukhnah)."""
    timeline = project_place(
        [
            control(ISIS, on=on("05-01"), by=REUTERS),
            capture(GOV, on=on("08-05"), by=SANA),
            control(GOV, on=on("08-06"), by=REUTERS),
            control(GOV, on=on("08-12"), by=NEUTRAL_C),
        ]
    )
    assert summary(timeline) == [
        (day("05-01"), day("08-05"), ISIS, 38, "assessed", False, day("05-01")),
        (day("08-05"), day("08-06"), GOV, 14, "claimed", False, day("08-05")),
        (day("08-06"), day("08-12"), GOV, 47, "assessed", False, day("08-05")),
        (day("08-12"), None, GOV, 62, "assessed", False, day("08-05")),
    ]
    # The last segment rests on the three counted claims of the government's tenure.
    assert len(timeline.segments[-1].events) == 3


def test_worked_case_control_claim_against_standing_evidence() -> None:
    """A control claim against the holder's standing evidence: disputed from the holder's
    last report (the unexplained change), open until a later agreeing report settles it."""
    gov = capture(GOV, on=on("06-03"), by=REUTERS, id=1)
    isis = control(ISIS, on=on("06-10"), by=AMAQ, id=2)
    settles = control(GOV, on=on("06-20"), by=NEUTRAL_C, id=3)
    timeline = project_place([gov, isis, settles])
    assert summary(timeline) == [
        (day("06-03"), day("06-04"), GOV, 38, "assessed", False, day("06-03")),
        (day("06-04"), day("06-20"), GOV, 38, "assessed", True, day("06-03")),
        (day("06-20"), None, GOV, 56, "assessed", False, day("06-03")),
    ]
    disputed = timeline.segments[1]
    assert [(c.side, c.source, c.event) for c in disputed.claims] == [
        (ISIS, "Amaq", uid(2)),
        (GOV, "Reuters", uid(1)),
    ]
    assert [(s.side, s.sources, s.claims) for s in disputed.supports] == [
        (ISIS, 1, 1),
        (GOV, 1, 1),
    ]
    assert disputed.reason == (
        "No report for another side explains a change of hands, so the claims covering this "
        "time are weighed with the standing evidence of the side that held the place. "
        "syrian-government has the higher support: syrian-government 38.40% (1 source), "
        "isis 9.60% (1 source)."
    )
    # Before the settling report, the dispute stays open past Amaq's day.
    without = project_place([gov, isis])
    assert summary(without)[-1] == (day("06-04"), None, GOV, 38, "assessed", True, day("06-03"))


def test_worked_case_a_capture_explains_a_change() -> None:
    """A capture is consistent with the old holder having held the place until then."""
    timeline = project_place(
        [control(GOV, on=on("05-01"), by=REUTERS), capture(ISIS, on=on("06-04"), by=NEUTRAL_C)]
    )
    assert summary(timeline) == [
        (day("05-01"), day("06-04"), GOV, 38, "assessed", False, day("05-01")),
        (day("06-04"), None, ISIS, 29, "assessed", False, day("06-04")),
    ]


def test_worked_case_a_change_happens_once() -> None:
    """A week-precise capture does not hand the place back and forth around a day report
    inside its week: once isis wins a piece, the capture competes as a control claim."""
    timeline = project_place(
        [
            control(ISIS, on=on("05-01"), by=REUTERS),
            capture(GOV, on=on("06-07"), precision="week", by=SANA),  # 06-05..06-12
            control(ISIS, on=on("06-07"), by=REUTERS),
        ]
    )
    assert summary(timeline) == [
        (day("05-01"), day("06-05"), ISIS, 38, "assessed", False, day("05-01")),
        (day("06-05"), day("06-07"), GOV, 14, "claimed", False, day("06-05")),
        (day("06-07"), None, ISIS, 38, "assessed", True, day("06-07")),
    ]


def test_worked_case_tie() -> None:
    """Equal support keeps the holder, its evidence and confidence; the dispute stays open."""
    timeline = project_place(
        [
            control(SDF, on=on("05-01"), by=REUTERS, id=1),
            capture(GOV, on=on("06-03"), by=NEUTRAL_C, id=2),
            capture(ISIS, on=on("06-03"), by=AGENCY_C, id=3),
        ]
    )
    assert summary(timeline) == [
        (day("05-01"), day("06-03"), SDF, 38, "assessed", False, day("05-01")),
        (day("06-03"), None, SDF, 38, "assessed", True, day("05-01")),
    ]
    tie = timeline.segments[1]
    assert tie.events == (uid(1),)
    assert tie.reason == (
        "A report of a change of hands covers this time, so the claims covering it decide. "
        "Tie at 28.80% between isis and syrian-government; the previous controller, sdf, is "
        "kept. Supports: isis 28.80% (1 source), syrian-government 28.80% (1 source)."
    )


def test_an_agreeing_report_that_breaks_a_tie_for_the_holder_never_lowers_its_confidence() -> None:
    """The property's falsifying example, explicit: a capture for another side tied by a
    report for the holder keeps the holder at 80; a new source agreeing with the holder breaks
    the tie for it, and its confidence rises (80 -> 91), never drops (it was 53)."""
    alpha = source("Alpha", "B")
    events = [
        capture(GOV, on=on("06-01"), by=alpha, credibility=1, hedge="confirmed", id=1),  # 0.8
        # 0.1 each on 06-12: the capture explains a change, so the covering claims decide: tie.
        capture(
            SDF,
            on=on("06-12"),
            by=source("Charlie", "D", ISIS),
            credibility=6,
            hedge="alleged",
            id=5,
        ),
        capture(
            GOV, on=on("06-12"), by=source("Delta", "F"), credibility=5, hedge="confirmed", id=8
        ),
    ]
    tied = segment_at(project_place(events), day("06-12"))
    assert tied is not None
    assert (tied.controller, tied.confidence, tied.basis, tied.disputed) == (
        GOV,
        80,
        "assessed",
        True,
    )
    agreeing = control(GOV, on=on("06-12"), by=source("Newcomer", "A"), id=901)  # 0.48
    after = segment_at(project_place([*events, agreeing]), day("06-12"))
    assert after is not None
    # Alpha's standing 0.8 grown by Delta 0.1 and Newcomer 0.48: 1 - 0.2 x 0.9 x 0.52.
    assert (after.controller, after.confidence, after.basis, after.disputed) == (
        GOV,
        91,
        "assessed",
        True,
    )
    assert after.events == (uid(1), uid(8), uid(901))


def test_a_holder_that_beats_a_capture_is_scored_on_its_grown_standing_evidence() -> None:
    """When a capture for another side covers a piece, the covering claims alone decide who
    wins; if the holder wins, its standing evidence grows by its claims there and its
    confidence is that evidence's support (as when it wins against a control claim): the
    listing shows what decided, the confidence and events what the holder holds on."""
    strong = {"by": REUTERS, "credibility": 1}  # 0.64
    events = [
        control(GOV, on=on("06-01"), id=1, **strong),
        capture(SDF, on=on("06-12"), by=NEUTRAL_C, id=2),  # 0.288
        control(GOV, on=on("06-12"), by=AGENCY_C, id=3),  # 0.288: a tie, gov kept at 64
    ]
    assert summary(project_place(events)) == [
        (day("06-01"), day("06-12"), GOV, 64, "assessed", False, day("06-01")),
        (day("06-12"), None, GOV, 64, "assessed", True, day("06-01")),
    ]
    events.append(control(GOV, on=on("06-12"), by=AMAQ, id=4))  # 0.192 (a third side's)
    timeline = project_place(events)
    # Who wins: gov 1 - 0.712 x 0.808 = 42.47% against sdf 28.80%. Confidence: Reuters'
    # 0.64 grown by both, 1 - 0.36 x 0.712 x 0.808 = 0.79289..., 79 (it was 42 before the fix).
    assert summary(timeline) == [
        (day("06-01"), day("06-12"), GOV, 64, "assessed", False, day("06-01")),
        (day("06-12"), None, GOV, 79, "assessed", True, day("06-01")),
    ]
    won = timeline.segments[1]
    assert [(s.side, s.support, s.sources) for s in won.supports] == [
        (SDF, 0.288, 1),
        (GOV, 0.424704, 2),
    ]
    assert [c.event for c in won.claims] == [uid(2), uid(3), uid(4)]
    assert won.events == (uid(1), uid(3), uid(4))
    assert won.reason == (
        "A report of a change of hands covers this time, so the claims covering it decide. "
        "syrian-government has the higher support: syrian-government 42.47% (2 sources), "
        "sdf 28.80% (1 source). syrian-government keeps the place on its standing evidence "
        "grown by its claims here: 79.29% (3 sources)."
    )


def test_worked_case_no_controller() -> None:
    """No controller is a controller; a claim for a side after it is a change, not a
    contradiction."""
    timeline = project_place(
        [
            control(GOV, on=on("05-01"), by=REUTERS),
            withdrawal(GOV, on=on("06-05"), by=NEUTRAL_C),
            control(ISIS, on=on("06-09"), by=AMAQ),
        ]
    )
    assert summary(timeline) == [
        (day("05-01"), day("06-05"), GOV, 38, "assessed", False, day("05-01")),
        (day("06-05"), day("06-09"), None, 29, "assessed", False, None),
        (day("06-09"), None, ISIS, 10, "claimed", False, day("06-09")),
    ]
    assert [s.status for s in timeline.segments] == ["controlled", "unknown", "controlled"]


# ---------------------------------------------------------------------------------------------
# Rule 3: pieces and persistence


def test_control_persists_open_ended() -> None:
    """Control established by a claim persists after its interval, open-ended."""
    segment = only(project_place([capture(GOV, on=on("06-03"), by=NEUTRAL_C)]))
    assert (segment.valid_from, segment.valid_to) == (day("06-03"), None)
    assert segment.held_since == day("06-03")


def test_claims_on_separate_intervals_are_a_sequence_not_a_dispute() -> None:
    """Gov captures on 06-03, ISIS on 06-10: ISIS from 06-10, nothing disputed."""
    timeline = project_place(
        [capture(GOV, on=on("06-03"), by=SANA), capture(ISIS, on=on("06-10"), by=AMAQ)]
    )
    assert control_view(timeline) == [
        (day("06-03"), day("06-10"), GOV, "controlled", None, False),
        (day("06-10"), None, ISIS, "controlled", None, False),
    ]


def test_a_coarse_claim_competes_in_every_piece_inside_it_and_nowhere_else() -> None:
    """A week-long gov claim and a one-day ISIS control claim inside it: only the ISIS day is
    disputed; the rest of the week is decided by the week claim alone, without disagreement,
    which closes the dispute."""
    week = control(GOV, on=on("06-07"), precision="week", by=REUTERS, id=1)  # 06-05..06-12
    one_day = control(ISIS, on=on("06-08"), by=AMAQ, id=2)
    timeline = project_place([week, one_day])
    assert control_view(timeline) == [
        (day("06-05"), day("06-08"), GOV, "controlled", None, False),
        (day("06-08"), day("06-09"), GOV, "controlled", None, True),
        (day("06-09"), None, GOV, "controlled", None, False),
    ]
    disputed = timeline.segments[1]
    assert {c.event for c in disputed.claims} == {uid(1), uid(2)}
    assert [(s.side, s.claims) for s in disputed.supports] == [(ISIS, 1), (GOV, 1)]


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


def test_a_new_claim_never_reaches_before_the_last_covered_piece() -> None:
    """An unexplained change marks only the uncovered time since the holder's last report:
    the pieces that reports covered before it keep their content (disputes never chain)."""
    earlier = [
        capture(GOV, on=on("06-01"), by=REUTERS),
        control(GOV, on=on("06-05"), by=NEUTRAL_C),
    ]
    before = project_place(earlier)
    after = project_place([*earlier, control(ISIS, on=on("06-10"), by=AMAQ)])
    assert clipped(after, day("06-06")) == clipped(before, day("06-06"))
    assert control_view(after)[-1] == (day("06-06"), None, GOV, "controlled", None, True)


# ---------------------------------------------------------------------------------------------
# Rule 4: standing evidence and disputes


def test_a_stronger_control_claim_takes_the_place_and_marks_the_time_before() -> None:
    """A control claim for ISIS that beats the holder's standing evidence wins its piece; the
    time since the holder's last report keeps the holder, disputed, with the same claims."""
    gov = capture(GOV, on=on("06-01"), by=SANA, id=1)  # 0.144
    isis = control(ISIS, on=on("06-05"), by=REUTERS, id=2)  # 0.384
    timeline = project_place([gov, isis])
    assert summary(timeline) == [
        (day("06-01"), day("06-02"), GOV, 14, "claimed", False, day("06-01")),
        (day("06-02"), day("06-05"), GOV, 14, "claimed", True, day("06-01")),
        (day("06-05"), None, ISIS, 38, "assessed", True, day("06-05")),
    ]
    marked, won = timeline.segments[1:]
    assert marked.claims == won.claims
    assert marked.supports == won.supports
    assert won.reason is not None
    assert marked.reason is not None
    assert marked.reason.startswith(won.reason)
    assert marked.reason.endswith(
        "Until 2017-06-05T00:00:00.000000Z, syrian-government is kept as controller: nothing "
        "reports the change before then."
    )


def test_a_dispute_stays_open_across_uncovered_days_until_an_agreeing_report() -> None:
    """An open dispute persists over days no report covers, and closes when a later piece is
    decided without disagreement."""
    events = [
        capture(GOV, on=on("06-01"), by=REUTERS),
        control(ISIS, on=on("06-03"), by=AMAQ),
        control(GOV, on=on("06-15"), by=REUTERS),
    ]
    timeline = project_place(events)
    assert control_view(timeline) == [
        (day("06-01"), day("06-02"), GOV, "controlled", None, False),
        (day("06-02"), day("06-15"), GOV, "controlled", None, True),
        (day("06-15"), None, GOV, "controlled", None, False),
    ]


def test_the_holders_evidence_carries_forward_while_it_holds() -> None:
    """A weak report for the holder still beats a strong contradiction, because the holder's
    standing evidence is weighed with it."""
    events = [
        capture(GOV, on=on("06-01"), by=REUTERS),  # 0.384
        control(GOV, on=on("06-03"), by=NEUTRAL_C),  # 0.288: standing 0.561408
        control(ISIS, on=on("06-10"), by=source("Agency", "B")),  # 0.384
    ]
    segment = segment_at(project_place(events), day("06-10"))
    assert segment is not None
    assert (segment.controller, segment.confidence, segment.disputed) == (GOV, 56, True)
    assert [(s.side, s.sources) for s in segment.supports] == [(ISIS, 1), (GOV, 2)]


def test_a_new_holders_evidence_starts_from_its_own_claims() -> None:
    """After a change of hands the new controller's standing evidence is its own claims: the
    old holder's reports no longer count for anyone."""
    events = [
        control(GOV, on=on("05-01"), by=REUTERS),
        control(GOV, on=on("05-02"), by=NEUTRAL_C),
        capture(ISIS, on=on("06-01"), by=source("Agency", "A"), credibility=2),  # 0.64
        control(ISIS, on=on("06-05"), by=AMAQ),  # 0.096
    ]
    timeline = project_place(events)
    last = timeline.segments[-1]
    # 1 - (1 - 0.64)(1 - 0.096) = 0.67456
    assert (last.controller, last.confidence, last.held_since) == (ISIS, 67, day("06-01"))
    assert len(last.events) == 2


def test_a_capture_after_no_controller_is_a_change_not_a_contradiction() -> None:
    """After a withdrawal to no one, a control claim for a side simply establishes it."""
    events = [
        withdrawal(ISIS, on=on("06-03"), by=REUTERS),
        control(GOV, on=on("06-10"), by=SANA),
    ]
    assert control_view(project_place(events)) == [
        (day("06-03"), day("06-10"), None, "unknown", None, False),
        (day("06-10"), None, GOV, "controlled", None, False),
    ]


def test_a_week_precise_claim_inside_a_run_of_day_claims() -> None:
    """A week report of an ISIS capture amid daily government reports wins its first piece (a
    change); a stronger day report takes the place back, and from then on the capture no
    longer explains a change: it competes as a control claim against the government's
    standing evidence, and the dispute stays open after its week."""
    strong = {"by": REUTERS, "credibility": 1}  # 0.64
    events = [
        control(GOV, on=on("06-04"), **strong),
        capture(ISIS, on=on("06-07"), precision="week", by=source("Agency", "A")),  # 0.48
        control(GOV, on=on("06-06"), **strong),
        control(GOV, on=on("06-08"), by=NEUTRAL_C),
    ]
    timeline = project_place(events)
    assert summary(timeline) == [
        (day("06-04"), day("06-05"), GOV, 64, "assessed", False, day("06-04")),
        (day("06-05"), day("06-06"), ISIS, 48, "assessed", False, day("06-05")),
        (day("06-06"), day("06-08"), GOV, 64, "assessed", True, day("06-06")),
        (day("06-08"), None, GOV, 74, "assessed", True, day("06-06")),
    ]


def test_a_backdated_report_inside_an_old_tenure() -> None:
    """A report backdated into an old tenure changes that tenure (its confidence grows) and
    nothing after the next change of hands."""
    events = [
        capture(GOV, on=on("03-01"), by=SANA),
        capture(ISIS, on=on("05-01"), by=REUTERS),
        control(ISIS, on=on("05-20"), by=NEUTRAL_C),
    ]
    before = project_place(events)
    late = control(GOV, on=on("04-01"), by=REUTERS)
    after = project_place([*events, late])
    assert clipped(after, day("04-01")) == clipped(before, day("04-01"))
    moved = segment_at(after, day("04-15"))
    assert moved is not None
    assert (moved.controller, moved.confidence, moved.held_since) == (GOV, 47, day("03-01"))
    assert [s for s in after.segments if s.valid_from >= day("05-01")] == [
        s for s in before.segments if s.valid_from >= day("05-01")
    ]


# ---------------------------------------------------------------------------------------------
# Rule 5: scores and support


def test_score_is_the_product_of_the_weights() -> None:
    """Reliability x credibility x hedge x alignment, exactly."""
    score = CREDIBILITY_V2.score(
        reliability="B",
        credibility=2,
        hedge="claimed",
        alignment="neutral",
        favours=GOV,
        disfavours=ISIS,
    )
    assert score == Fraction(4, 5) * Fraction(4, 5) * Fraction(3, 5)


def test_alignment_halves_self_serving_and_raises_against_interest_capped_at_one() -> None:
    """x0.5 when the source favours its own side, x1.5 against its side, never above 1."""

    def score(alignment: str, favours: str | None) -> Fraction:
        return CREDIBILITY_V2.score(
            reliability="A",
            credibility=1,
            hedge="confirmed",
            alignment=alignment,
            favours=favours,
            disfavours=ISIS,
        )

    assert score(GOV, GOV) == Fraction(1, 2)
    assert score(ISIS, GOV) == 1  # 1.5, capped
    assert score(SDF, GOV) == 1
    assert score("neutral", None) == 1
    reported = CREDIBILITY_V2.score(
        reliability="C",
        credibility=3,
        hedge="reported",
        alignment=ISIS,
        favours=GOV,
        disfavours=ISIS,
    )
    assert reported == Fraction(3, 5) * Fraction(3, 5) * Fraction(4, 5) * Fraction(3, 2)


def test_a_source_counts_once_per_side_with_its_best_claim() -> None:
    """Two claims by one source (spelled two ways) add nothing beyond the better one."""
    events = [
        capture(GOV, by=REUTERS, credibility=2),  # 0.8 x 0.8 x 0.8 = 0.512
        control(GOV, by=source(" reuters", "B"), credibility=3),  # 0.384
    ]
    assert only(project_place(events)).confidence == 51


def test_support_is_noisy_or_over_independent_sources() -> None:
    """Two independent sources at 0.5 give support 0.75."""
    half = {"credibility": 1, "hedge": "confirmed"}
    events = [
        capture(GOV, by=source("One", "F"), **half),
        capture(GOV, by=source("Two", "F"), **half),
    ]
    assert only(project_place(events)).confidence == 75


def test_higher_support_wins_and_the_listing_shows_the_counted_claims() -> None:
    """The side with the higher support wins; the listing shows each source's best claim per
    side, and per side how many in-force claims decided the piece."""
    events = [
        capture(GOV, on=on("06-03"), by=SANA, id=1),  # 0.144
        control(GOV, on=on("06-03"), by=SANA, id=4, hedge="claimed"),  # 0.108: not counted
        capture(ISIS, on=on("06-03"), by=REUTERS, id=2),  # 0.384
        capture(ISIS, on=on("06-03"), by=NEUTRAL_C, id=3),  # 0.288
    ]
    segment = only(project_place(events))
    assert (segment.controller, segment.confidence, segment.disputed) == (ISIS, 56, True)
    assert segment.reason == (
        "Claims for different controllers cover the first time anyone claimed the place. "
        "isis has the higher support: isis 56.14% (2 sources), "
        "syrian-government 14.40% (1 source)."
    )
    assert [(s.side, s.sources, s.claims) for s in segment.supports] == [
        (ISIS, 2, 2),
        (GOV, 1, 2),
    ]
    assert [(c.side, c.source, c.score, c.event) for c in segment.claims] == [
        (ISIS, "Reuters", 0.384, uid(2)),
        (ISIS, "South Front", 0.288, uid(3)),
        (GOV, "SANA", 0.144, uid(1)),
    ]
    assert segment.events == (uid(2), uid(3))


def test_a_tie_without_a_previous_segment_means_no_controller() -> None:
    """A tie in the first piece leaves the place without a controller, confidence 0."""
    events = [
        capture(GOV, by=source("One", "C")),
        capture(ISIS, by=source("Two", "C")),
    ]
    first = only(project_place(events))
    assert (first.controller, first.status, first.disputed) == (None, "unknown", True)
    assert (first.confidence, first.basis, first.events, first.held_since) == (
        0,
        "claimed",
        (),
        None,
    )


def test_confidence_rounds_half_up() -> None:
    """Support 0.125 is confidence 13 (half up, not to even)."""
    segment = only(
        project_place([capture(GOV, by=source("Rumour", "F"), credibility=6, hedge="alleged")])
    )
    assert segment.confidence == 13


# ---------------------------------------------------------------------------------------------
# Rule 6: determinism


def test_same_events_in_any_order_give_the_same_bytes() -> None:
    """Input order never shows in the output, down to the encoded bytes."""
    report = capture(GOV, on=on("06-03"), by=SANA)
    events = [
        capture(ISIS, on=on("05-01"), by=AMAQ),
        report,
        denial(report, AMAQ),
        confirmation(report, REUTERS),
        encirclement(GOV, on=on("06-01")),
        clash(ISIS, on=on("06-05"), opponent=GOV),
        control(ISIS, on=on("06-20"), by=AMAQ),
        strike(ISIS, on=on("06-07")),
    ]
    expected = msgspec.json.encode(project_place(events))
    shuffler = random.Random(4)
    for _ in range(10):
        shuffler.shuffle(events)
        assert msgspec.json.encode(project_place(events)) == expected


# ---------------------------------------------------------------------------------------------
# Rule 7: basis


def test_basis_is_claimed_when_every_supporting_claim_is_self_serving() -> None:
    """Only self-serving claims for the winner: ``claimed``; one other claim: ``assessed``."""
    alone = only(project_place([capture(GOV, by=SANA)]))
    assert (alone.basis, alone.confidence) == ("claimed", 14)
    both = only(project_place([capture(GOV, by=SANA), capture(GOV, by=NEUTRAL_C)]))
    assert (both.basis, both.confidence) == ("assessed", 39)


# ---------------------------------------------------------------------------------------------
# Rule 8: status and listing


def test_encircled_from_the_encirclement_until_a_capture() -> None:
    """Encircled from the encirclement on, until a capture (by anyone)."""
    events = [
        capture(ISIS, on=on("05-01"), by=REUTERS, id=1),
        encirclement(GOV, on=on("06-01"), id=2),
        capture(GOV, on=on("06-03"), by=REUTERS, id=3),
    ]
    timeline = project_place(events)
    assert control_view(timeline) == [
        (day("05-01"), day("06-01"), ISIS, "controlled", None, False),
        (day("06-01"), day("06-03"), ISIS, "encircled", GOV, False),
        (day("06-03"), None, GOV, "controlled", None, False),
    ]
    assert timeline.segments[1].events == (uid(1), uid(2))


def test_siege_lifted_ends_the_encirclement() -> None:
    """A ``siege_lifted`` ends the encirclement; without an end it is open-ended."""
    held = capture(ISIS, on=on("05-01"), by=REUTERS, id=1)
    ring = encirclement(GOV, on=on("06-01"), id=2)
    assert segment_at(project_place([held, ring]), day("12-31")) == Segment(
        valid_from=day("06-01"),
        valid_to=None,
        controller=ISIS,
        held_since=day("05-01"),
        status="encircled",
        status_by=GOV,
        disputed=False,
        confidence=38,
        basis="assessed",
        claims=(),
        supports=(),
        reason=None,
        events=(uid(1), uid(2)),
    )
    lifted = project_place([held, ring, siege_lifted(ISIS, on=on("06-10"))])
    assert control_view(lifted)[-1] == (day("06-10"), None, ISIS, "controlled", None, False)


def test_contested_during_a_clash_and_it_wins_over_encircled() -> None:
    """A clash or counter-attack makes its interval contested, even while encircled."""
    events = [
        capture(ISIS, on=on("05-01"), by=REUTERS, id=1),
        encirclement(GOV, on=on("06-01"), id=2),
        counter_attack(SDF, on=on("06-05"), id=3),
    ]
    assert control_view(project_place(events)) == [
        (day("05-01"), day("06-01"), ISIS, "controlled", None, False),
        (day("06-01"), day("06-05"), ISIS, "encircled", GOV, False),
        (day("06-05"), day("06-06"), ISIS, "contested", SDF, False),
        (day("06-06"), None, ISIS, "encircled", GOV, False),
    ]
    timeline = project_place([*events, capture(GOV, on=on("06-10"), by=REUTERS, id=4)])
    assert control_view(timeline)[-2:] == [
        (day("06-06"), day("06-10"), ISIS, "encircled", GOV, False),
        (day("06-10"), None, GOV, "controlled", None, False),
    ]
    assert [s.events for s in timeline.segments] == [
        (uid(1),),
        (uid(1), uid(2)),
        (uid(1), uid(3)),
        (uid(1), uid(2)),
        (uid(4),),
    ]


def test_a_clash_by_the_controller_is_contested_by_its_opponent() -> None:
    """ "The army clashed with ISIS" in an army-held town is contested by ISIS."""
    events = [capture(GOV, on=on("06-01"), by=REUTERS), clash(GOV, on=on("06-05"), opponent=ISIS)]
    segment = segment_at(project_place(events), day("06-05"))
    assert segment is not None
    assert (segment.status, segment.status_by) == ("contested", ISIS)


def test_a_side_does_not_besiege_a_place_it_holds() -> None:
    """An encirclement by the controller itself does not make the place encircled."""
    events = [withdrawal(ISIS, opponent=GOV, on=on("06-03"), by=REUTERS), encirclement(GOV)]
    assert only(project_place(events)).status == "controlled"


def test_unknown_when_no_controller() -> None:
    """No controller is status ``unknown``, unless the place is contested."""
    events = [withdrawal(ISIS, on=on("06-03"), by=REUTERS), clash(GOV, on=on("06-05"))]
    assert control_view(project_place(events)) == [
        (day("06-03"), day("06-05"), None, "unknown", None, False),
        (day("06-05"), day("06-06"), None, "contested", GOV, False),
        (day("06-06"), None, None, "unknown", None, False),
    ]


def test_a_status_report_before_any_claim_opens_the_timeline_with_no_controller() -> None:
    """A clash reported before anyone is said to hold the place starts the timeline there."""
    events = [clash(ISIS, on=on("06-01")), capture(GOV, on=on("06-05"), by=REUTERS)]
    assert summary(project_place(events)) == [
        (day("06-01"), day("06-02"), None, 0, "claimed", False, None),
        (day("06-02"), day("06-05"), None, 0, "claimed", False, None),
        (day("06-05"), None, GOV, 38, "assessed", False, day("06-05")),
    ]
    assert [s.status for s in project_place(events).segments] == [
        "contested",
        "unknown",
        "controlled",
    ]


def test_informational_events_never_change_control() -> None:
    """Casualties, equipment losses, strikes, advances and ``other`` events (a source's own
    code, e.g. PLOVER:PROTEST) are kept but change nothing."""
    base = [capture(GOV, on=on("06-03"), by=REUTERS)]
    noise = [
        casualties(on=on("06-04")),
        event("equipment_loss", GOV, on=on("06-05")),
        strike(ISIS, on=on("06-06")),
        event("advance", ISIS, on=on("06-07")),
        event("other", ISIS, on=on("06-08"), code="PLOVER:PROTEST"),
    ]
    assert project_place([*base, *noise]) == project_place(base)


def test_adjacent_segments_with_equal_content_merge() -> None:
    """A claim's own interval and its persistence are one segment, not two."""
    timeline = project_place([capture(GOV, on=on("06-03"), by=REUTERS)])
    assert len(timeline.segments) == 1


def test_a_listing_never_grows_with_the_length_of_a_dispute() -> None:
    """Thirty days of the same two sources disagreeing list two claims, not sixty."""
    events = [capture(GOV, on=on("05-01"), by=REUTERS)]
    for n in range(30):
        date = f"2017-06-{n + 1:02d}"
        events.append(control(GOV, on=date, by=REUTERS))
        events.append(control(ISIS, on=date, by=AMAQ))
    timeline = project_place(events)
    assert all(len(s.claims) <= 2 for s in timeline.segments)
    assert max(len(s.events) for s in timeline.segments) == 1


# ---------------------------------------------------------------------------------------------
# docs/projection.md: the seed article, end to end


def test_the_seed_article_end_to_end() -> None:
    """Maskanah from seed-article.txt gives the timeline shown in docs/projection.md."""
    south_front = source("South Front", "C", GOV)
    liberated = capture(GOV, on=on("06-03"), opponent=ISIS, by=south_front, id=3)
    events = [
        control(ISIS, on=on("05-15"), by=REUTERS, credibility=2, id=1),
        encirclement(GOV, on=on("06-02"), by=south_front, id=2),
        liberated,
        withdrawal(
            ISIS,
            on=on("06-03"),
            opponent=GOV,
            by=msgspec.structs.replace(south_front, attribution="local sources"),
            hedge="claimed",
            id=4,
        ),
        denial(liberated, AMAQ, id=5),
    ]
    timeline = project_place(events)
    assert [(*control_view_of(s), s.confidence, s.basis, s.events) for s in timeline.segments] == [
        (day("05-15"), day("06-02"), ISIS, "controlled", None, False, 51, "assessed", (uid(1),)),
        (
            day("06-02"),
            day("06-03"),
            ISIS,
            "encircled",
            GOV,
            False,
            51,
            "assessed",
            (uid(1), uid(2)),
        ),
        (day("06-03"), None, GOV, "controlled", None, True, 14, "claimed", (uid(3),)),
    ]
    disputed = timeline.segments[2]
    assert [(c.side, c.source, c.score, c.link) for c in disputed.claims] == [
        (ISIS, "Amaq", 0.096, "denies"),
        (GOV, "South Front", 0.144, "direct"),
    ]
    assert [(s.side, s.sources, s.claims) for s in disputed.supports] == [(ISIS, 1, 1), (GOV, 1, 2)]
    assert disputed.held_since == day("06-03")


def test_a_status_event_before_the_first_claim_keeps_the_timeline_after_it_once() -> None:
    """Adding a status event to the days before a place's first control claim (pieces with
    no content) leaves the segments after them as they were, once each.

    Regression (found by hypothesis in test_adding_events_in_any_steps_gives_the_fold_of_all):
    the refold rejoined the kept sweep at a piece without content and spliced the segments
    from there to the end in again, so the capture's segment was listed twice."""
    alpha = source("Alpha", "B")
    taken = capture(GOV, on="2017-06-08", by=alpha, credibility=1, hedge="confirmed", id=1)
    first = [
        taken,
        siege_lifted(GOV, on="2017-06-01", by=alpha, credibility=1, hedge="confirmed", id=2,
                     links=[link(taken, "confirms")]),
        siege_lifted(GOV, on="2017-06-03", by=alpha, credibility=1, hedge="confirmed", id=6),
    ]  # fmt: skip
    late = siege_lifted(
        GOV, opponent=GOV, on="2017-06-01", by=alpha, credibility=1, hedge="confirmed", id=18
    )
    fold = PlaceFold()
    fold.add(first)
    refold = fold.add([late])
    whole = project_place([*first, late])
    assert fold.timeline() == whole
    assert [s.valid_from for s in whole.segments] == [datetime(2017, 6, 8, tzinfo=UTC)]
    for part in refold.parts if refold is not None else ():
        assert all(part.until is None or s.valid_from < part.until for s in part.segments)
