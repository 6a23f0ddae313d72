"""History, pure: where a timeline's reading changes along valid time (transitions), and where
a commit changed the map's reading of a place (control_changes)."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.timeline import Segment
from service.domain.history import changed_fields, control_changes, transitions


def day(n: int) -> datetime:
    return datetime(2017, 6, n, tzinfo=UTC)


def seg(start: int, end: int | None, controller: str | None, **kw: object) -> Segment:
    fields: dict[str, object] = {
        "valid_from": day(start),
        "valid_to": None if end is None else day(end),
        "controller": controller,
        "status": "controlled" if controller else "unknown",
        "status_by": None,
        "disputed": False,
        "confidence": 50,
        "basis": "claimed",
        "claims": (),
        "supports": (),
        "reason": None,
        "events": (),
    }
    fields.update(kw)
    return Segment(**fields)  # type: ignore[arg-type]


def test_a_capture_cutting_an_open_segment() -> None:
    """A capture that cuts an open-ended segment is one change from its day on, from the old
    controller to the new."""
    changes = control_changes([seg(1, None, "isis")], [seg(1, 3, "isis"), seg(3, None, "gov")])
    assert [(c.valid_from, c.valid_to) for c in changes] == [(day(3), None)]
    assert changes[0].before is not None
    assert changes[0].before.controller == "isis"
    assert changes[0].after is not None
    assert changes[0].after.controller == "gov"


def test_a_first_claim_has_nothing_before_and_confidence_alone_is_no_change() -> None:
    """A place's first segment is a change with nothing before it, and a segment whose
    confidence alone changed is no change."""
    (first,) = control_changes([], [seg(2, None, "isis")])
    assert first.before is None
    assert first.valid_from == day(2)
    assert control_changes([seg(1, None, "isis")], [seg(1, None, "isis", confidence=90)]) == []


def test_neighbours_with_the_same_change_merge_and_a_status_counts() -> None:
    """Adjacent segments making the same change merge into one change over their whole span, and
    a new status (encircled) under the same controller is a change."""
    removed = [seg(1, 2, "isis"), seg(2, 4, "isis", confidence=10)]
    added = [seg(1, 4, "gov", disputed=True)]
    (merged,) = control_changes(removed, added)
    assert (merged.valid_from, merged.valid_to) == (day(1), day(4))
    encircled = seg(1, 4, "isis", status="encircled", status_by="gov")
    (status,) = control_changes([seg(1, 4, "isis")], [encircled])
    assert status.after is not None
    assert status.after.status == "encircled"


def test_transitions_list_every_change_inside_the_range_not_the_ends() -> None:
    """A base set up on 06-02 and evacuated on 06-04 (the government holds the place before
    and after) gives two changes inside 06-02..06-06, though the two ends read the same; a
    boundary where only confidence changes is none; the government's first segment, before
    the range, is none."""
    timeline = [
        seg(1, 2, "gov"),
        seg(2, 3, "us-coalition"),
        seg(3, 4, "us-coalition", confidence=80),
        seg(4, None, "gov"),
    ]
    found = transitions(timeline, day(2), day(6))
    assert [(b.at, b.before and b.before.controller, b.after.controller) for b in found] == [
        (day(2), "gov", "us-coalition"),
        (day(4), "us-coalition", "gov"),
    ]
    assert [changed_fields(b.before, b.after) for b in found] == [["controller"], ["controller"]]


def test_transitions_include_both_ends_and_a_first_segment_starts_from_none() -> None:
    """The range is closed: changes at ``start`` and at ``end`` are in it, one a microsecond
    outside is not; a place's first segment inside the range is a change from none (all four
    fields changed), and a first segment before the range is no change."""
    contested = seg(3, 4, "gov", status="contested", status_by="hts")
    timeline = [seg(2, 3, "gov"), contested, seg(4, None, "gov")]
    assert [b.at for b in transitions(timeline, day(2), day(4))] == [day(2), day(3), day(4)]
    assert [b.at for b in transitions(timeline, day(3), day(3))] == [day(3)]
    just_after = day(2).replace(microsecond=1)
    assert [b.at for b in transitions(timeline, just_after, day(3))] == [day(3)]
    (first, *_) = transitions(timeline, day(1), day(6))
    assert first.before is None
    assert changed_fields(first.before, first.after) == [
        "controller", "status", "status_by", "disputed",
    ]  # fmt: skip
    assert changed_fields(timeline[0], contested) == ["status", "status_by"]
    assert changed_fields(contested, seg(4, None, "gov", disputed=True)) == [
        "status", "status_by", "disputed",
    ]  # fmt: skip


def test_a_segment_after_a_gap_starts_from_none() -> None:
    """Timelines are contiguous; were one not, the segment after a gap has no ``before``."""
    (after_gap,) = transitions([seg(1, 2, "gov"), seg(3, None, "gov")], day(3), day(3))
    assert after_gap.before is None
