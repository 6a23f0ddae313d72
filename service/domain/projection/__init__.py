"""The projection of one place: ``project_place(events, policy) -> Timeline`` (DESIGN section 4).

A pure function of the *set* of a place's events under policy ``credibility-v2``: no I/O, no
clock, no dependence on the order the events arrive in. Every read of the front (current
state, as-of queries, rebuilds, audits) is its output. ``docs/projection.md`` states the rules
with a worked example each; the modules here name the rule each step implements:

* :mod:`.claims`: a claim and the sides it names, what the facts make and the scores weigh;
* :mod:`.facts`: what the fold reads of an event, and the claims events make (rules 1, 2);
* :mod:`.scores`: scores, counted claims and support in exact integer arithmetic (rules 5, 6);
* :mod:`.decide`: what decides a piece of valid time, who wins, what it lists (rules 4, 5, 7);
* :mod:`.status`: encircled, contested, unknown (rule 8);
* :mod:`.fold`: the sweep over pieces, kept between additions so that a new event refolds only
  what it changes (rule 3, and the cost the policy states).
"""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime

from contracts.events import Event
from contracts.timeline import Segment, Timeline
from service.domain.policy import SERVED, Policy
from service.domain.projection.facts import (
    CHANGES_CONTROL,
    CONTESTS,
    ENDS_SIEGE,
    GIVES_TO_OPPONENT,
    GIVES_TO_SIDE,
    INFORMATIONAL,
    WITHDRAWS,
    Fact,
    changes_nothing,
)
from service.domain.projection.fold import Part, PlaceFold, Refold

__all__ = [
    "CHANGES_CONTROL",
    "CONTESTS",
    "ENDS_SIEGE",
    "GIVES_TO_OPPONENT",
    "GIVES_TO_SIDE",
    "INFORMATIONAL",
    "WITHDRAWS",
    "Fact",
    "Part",
    "PlaceFold",
    "Refold",
    "changes_nothing",
    "in_force",
    "project_place",
    "segment_at",
]


def project_place(events: Iterable[Event], policy: Policy = SERVED) -> Timeline:
    """Project the events about one place into its timeline under ``policy``.

    Every event must carry its ``id``. The same set of events always gives the same timeline,
    whatever the order (a duplicate of an event is ignored).
    """
    fold = PlaceFold(policy)
    fold.add(events)
    return fold.timeline()


def in_force(events: Iterable[Event]) -> dict[uuid.UUID, bool]:
    """Whether each event is in force (rule 1), by event id."""
    fold = PlaceFold()
    fold.add(events)
    return fold.in_force()


def segment_at(timeline: Timeline | Sequence[Segment], valid_time: datetime) -> Segment | None:
    """The segment containing ``valid_time`` (timezone-aware), or ``None`` when there is none.

    Takes a timeline, or its segments as stored (ordered by valid time, not overlapping).
    """
    if valid_time.tzinfo is None or valid_time.utcoffset() is None:
        raise ValueError("valid_time must be timezone-aware")
    segments = timeline.segments if isinstance(timeline, Timeline) else timeline
    i = bisect_right(segments, valid_time, key=lambda s: s.valid_from) - 1
    if i < 0:
        return None
    segment = segments[i]
    if segment.valid_to is not None and valid_time >= segment.valid_to:
        return None
    return segment
