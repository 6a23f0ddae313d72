"""control_changes: where a commit changed the map's reading of a place."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.timeline import Segment
from service.domain.history import control_changes


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
    changes = control_changes([seg(1, None, "isis")], [seg(1, 3, "isis"), seg(3, None, "gov")])
    assert [(c.valid_from, c.valid_to) for c in changes] == [(day(3), None)]
    assert changes[0].before is not None
    assert changes[0].before.controller == "isis"
    assert changes[0].after is not None
    assert changes[0].after.controller == "gov"


def test_a_first_claim_has_nothing_before_and_confidence_alone_is_no_change() -> None:
    (first,) = control_changes([], [seg(2, None, "isis")])
    assert first.before is None
    assert first.valid_from == day(2)
    assert control_changes([seg(1, None, "isis")], [seg(1, None, "isis", confidence=90)]) == []


def test_neighbours_with_the_same_change_merge_and_a_status_counts() -> None:
    removed = [seg(1, 2, "isis"), seg(2, 4, "isis", confidence=10)]
    added = [seg(1, 4, "gov", disputed=True)]
    (merged,) = control_changes(removed, added)
    assert (merged.valid_from, merged.valid_to) == (day(1), day(4))
    encircled = seg(1, 4, "isis", status="encircled", status_by="gov")
    (status,) = control_changes([seg(1, 4, "isis")], [encircled])
    assert status.after is not None
    assert status.after.status == "encircled"
