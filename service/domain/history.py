"""How a place's story changes: along valid time (``GET /v1/state/changes``) and from one
commit to the next (the "blame" view of ``GET /v1/places/{id}/history``).

Pure. :func:`transitions` lists where a timeline's reading changes inside a valid range: it
states what ``service/projections/sql/read_state_changes.sql`` answers from the stored rows (the
tests hold the two to each other).

A commit that changes a place's timeline closes some rows and inserts others
(:mod:`service.domain.bitemporal`); over the valid time those rows cover, each elementary
interval had one segment before (or none) and has one after (or none).
:func:`control_changes` lists the intervals where what an analyst reads off the map (who
holds the place, in what status, by whom, disputed or not) differs, neighbours with the
same before and after merged.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from contracts.front import ChangedField
from contracts.timeline import Segment

_Summary = tuple[str | None, str, str | None, bool]
SUMMARY_FIELDS: Final[tuple[ChangedField, ...]] = ("controller", "status", "status_by", "disputed")


@dataclass(frozen=True, slots=True)
class ControlChange:
    """Over ``[valid_from, valid_to)``: the segment's reading before and after (None: none)."""

    valid_from: datetime
    valid_to: datetime | None
    before: Segment | None
    after: Segment | None


def summary(segment: Segment | None) -> _Summary | None:
    """What the map shows of a segment: controller, status, status_by, disputed."""
    if segment is None:
        return None
    return (segment.controller, segment.status, segment.status_by, segment.disputed)


def changed_fields(before: Segment | None, after: Segment) -> list[ChangedField]:
    """What the map shows differently after a boundary than before it (all of it when there
    was no segment before)."""
    old, new = summary(before), summary(after)
    assert new is not None
    if old is None:
        return list(SUMMARY_FIELDS)
    return [name for name, a, b in zip(SUMMARY_FIELDS, old, new, strict=True) if a != b]


@dataclass(frozen=True, slots=True)
class Boundary:
    """A change along valid time: ``after`` starts at ``at``; ``before`` ends there (None:
    no segment ends there, ``after`` is the place's first)."""

    at: datetime
    before: Segment | None
    after: Segment


def transitions(segments: Sequence[Segment], start: datetime, end: datetime) -> list[Boundary]:
    """Every change of a timeline's reading with ``start <= at <= end``, in valid-time order:
    each boundary between consecutive segments whose summary (controller, status, status_by,
    disputed) differs, and the first segment if it starts inside the range. A segment that
    does not start where the one before it ends (timelines are contiguous: never, but a gap
    would mean no segment just before) starts from none."""
    found: list[Boundary] = []
    previous: Segment | None = None
    for segment in segments:
        joined = previous is not None and previous.valid_to == segment.valid_from
        before = previous if joined else None
        if start <= segment.valid_from <= end and summary(before) != summary(segment):
            found.append(Boundary(segment.valid_from, before, segment))
        previous = segment
    return found


def control_changes(removed: Sequence[Segment], added: Sequence[Segment]) -> list[ControlChange]:
    """Where the commit that replaced ``removed`` by ``added`` changed the map's reading."""
    ends = [s.valid_to for s in (*removed, *added)]
    open_end = any(end is None for end in ends)
    points = sorted(
        {s.valid_from for s in (*removed, *added)} | {end for end in ends if end is not None}
    )
    bounds: list[tuple[datetime, datetime | None]] = list(itertools.pairwise(points))
    if open_end and points:
        bounds.append((points[-1], None))
    changes: list[ControlChange] = []
    for start, end in bounds:
        before, after = _covering(removed, start), _covering(added, start)
        if before is None and after is None:
            continue
        if summary(before) == summary(after):
            continue
        last = changes[-1] if changes else None
        if (
            last is not None
            and last.valid_to == start
            and summary(last.before) == summary(before)
            and summary(last.after) == summary(after)
        ):
            changes[-1] = ControlChange(last.valid_from, end, last.before, last.after)
        else:
            changes.append(ControlChange(start, end, before, after))
    return changes


def _covering(segments: Sequence[Segment], moment: datetime) -> Segment | None:
    for segment in segments:
        if segment.valid_from <= moment and (segment.valid_to is None or moment < segment.valid_to):
            return segment
    return None
