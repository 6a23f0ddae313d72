"""The projection of one place: ``project_place(events, policy) -> Timeline`` (DESIGN section 4).

A pure function of the *set* of a place's events: no I/O, no clock, no dependence on the order
the events arrive in. Every read of the front (current state, as-of queries, rebuilds,
audits) is this function's output. ``docs/projection.md`` states the rules with a worked
example each; the comments here name the rule a step implements.

The fold runs in phases, each O(n log n) in the number of events:

1. index the events and decide which are in force (rule 1);
2. turn in-force events and their ``confirms``/``denies`` links into claims (rule 2);
3. cut the valid-time axis into *blocks*: dispute regions (rule 4, overlap) and runs of
   agreeing claims, then sweep them in time order, carrying control forward (rule 3),
   resolving each block by support (rules 5-7) and widening a block into a dispute when
   control changes without explanation (rule 4, unexplained change);
4. lay the status intervals (encirclement, clash, counter-attack) over the control
   timeline (rule 8) and merge neighbours with identical content.

Which side a capture without a named ``opponent`` takes the place from (needed for the
alignment weight, and for what a denial of it claims) comes from a preliminary run of
phase 3 without denials: the controller just before the capture.
"""

from __future__ import annotations

import math
import uuid
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, Final, TypeAlias

from contracts.events import Event, event_type
from contracts.timeline import Basis, Claim, LinkKind, Segment, Status, Support, Timeline
from service.domain.policy import CREDIBILITY_V1, NEUTRAL, Policy
from service.domain.records import source_key
from service.domain.time import valid_interval

Side: TypeAlias = str | None
"""A side's slug, or ``None`` for "no controller"."""

#: Types whose claim gives the place to the event's ``side``.
GIVES_TO_SIDE: Final = frozenset({"capture", "base_established", "control"})
#: Types whose claim gives the place to the event's ``opponent`` (or to no controller).
GIVES_TO_OPPONENT: Final = frozenset({"withdrawal", "base_evacuated"})
#: Claims that explain a change of controller; a bare ``control`` statement does not.
CHANGES_CONTROL: Final = frozenset({"capture", "base_established", "withdrawal", "base_evacuated"})
#: Types that make the place contested during their interval.
CONTESTS: Final = frozenset({"clash", "counter_attack"})
#: Types that end an encirclement.
ENDS_SIEGE: Final = frozenset({"capture", "siege_lifted"})
#: Types that never change a timeline: no claim, no status (rule 8's "informational").
INFORMATIONAL: Final = frozenset({"casualties", "equipment_loss", "strike", "advance", "other"})


def changes_nothing(event: Event) -> bool:
    """Whether adding ``event`` to any set of events leaves the timeline exactly as it was.

    True for an informational event that links to nothing: it makes no claim, drives no
    status, and is never among a segment's supporting events. (A later event's link to it
    claims nothing either.) ``test_informational_events_never_change_the_timeline`` pins it.
    """
    return event_type(event) in INFORMATIONAL and not event.relates_to


#: Relations by which a source takes its own earlier event out of force.
WITHDRAWS: Final = frozenset({"retracts", "corrects", "supersedes"})

_FOREVER: Final = datetime.max.replace(tzinfo=UTC)
"""Internal stand-in for an open end; never leaves this module (it becomes ``None``)."""


# --------------------------------------------------------------------------------------------
# Public helpers


def in_force(events: Iterable[Event]) -> dict[uuid.UUID, bool]:
    """Whether each event is in force (rule 1), by event id."""
    fold = PlaceFold()
    fold._update_force(fold._index(events))
    return dict(fold._force)


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


def project_place(events: Iterable[Event], policy: Policy = CREDIBILITY_V1) -> Timeline:
    """Project the events about one place into its timeline under ``policy``.

    Every event must carry its ``id``. The same set of events always gives the same timeline,
    whatever the order (a duplicate of an event is ignored).
    """
    fold = PlaceFold(policy)
    fold.add(events)
    return fold.timeline()


@dataclass(frozen=True, slots=True)
class Refold:
    """What :meth:`PlaceFold.add` changed: from ``since`` on, the timeline is ``segments``."""

    since: datetime | None
    """The valid time from which segments were recomputed (those before stay as they were);
    ``None`` when the whole timeline was."""
    segments: tuple[Segment, ...]
    """The timeline's segments with ``valid_from >= since`` (all of them when ``since`` is None)."""


class _Reach(Exception):
    """A sweep had to reopen a block before the cut: refold from ``start`` instead."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.start = start


_Entry: TypeAlias = tuple[datetime, int, uuid.UUID]
"""A fact in a time-ordered index: its start, its id as an integer (ties), its id."""


def _entry_start(entry: _Entry) -> datetime:
    return entry[0]


class PlaceFold:
    """One place's projection, kept between additions so that new events refold only a suffix.

    ``add`` indexes the new events, updates what is in force, and finds the earliest valid
    time they can change. It then picks a *cut* at or before that time where nothing crosses:
    no claim or contest interval straddles it, and no resolved block (of the final or the
    preliminary sweep) does. Everything before the cut is exactly what a fold of all the
    events gives there, so the fold resumes at the cut from the kept state: claims from the
    cut on, the two sweeps seeded with the blocks before it, the status overlay with the
    encirclements still open at it. When a sweep needs to reopen a block before the cut (an
    unexplained change reaching back, rule 4), the cut moves back to that block and the fold
    resumes from there. With nothing before the cut, it is a fold from scratch:
    :func:`project_place` is ``add`` on an empty fold, the same code.

    The cost of an addition follows the events from its cut on, not the place's whole log:
    an event reported the day it happens refolds little; one backdated by a month refolds
    that month. ``tests/unit/test_projection_properties.py`` checks that any sequence of
    additions gives the timeline of one fold of all the events, byte for byte.
    """

    def __init__(self, policy: Policy = CREDIBILITY_V1) -> None:
        self.policy = policy
        self._scorer = _Scorer(policy)
        self._facts: dict[uuid.UUID, _Fact] = {}
        self._force: dict[uuid.UUID, bool] = {}
        self._assertions: dict[uuid.UUID, _Assertion] = {}
        self._withdraws: dict[uuid.UUID, tuple[uuid.UUID, ...]] = {}
        """Each fact's targets by a withdrawing relation (any source: checked on use)."""
        self._withdrawers: dict[uuid.UUID, list[uuid.UUID]] = {}
        """The reverse: for a target, the facts that name it with a withdrawing relation."""
        self._linkers: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = {}
        """For a target, the facts that confirm or deny it, with the relation."""
        self._claimable: list[_Entry] = []
        """Facts that assert control (claims sit on their intervals), by start."""
        self._starts: list[datetime] = []
        self._ends: list[datetime] = []
        """Starts and ends of claimable and contesting facts: where a cut may not fall."""
        self._contests: list[_Entry] = []
        self._encirclements: list[_Entry] = []
        self._enders: list[_Entry] = []
        self._prelim: list[_Resolved] = []
        self._resolved: list[_Resolved] = []
        self._controls: list[_Control] = []
        self._pieces: list[_Piece] = []
        self._segments: list[Segment] = []
        self._failed = False
        """Set while an add runs; left set when it raised (the state may be half changed)."""

    def __len__(self) -> int:
        """How many events the fold holds."""
        return len(self._facts)

    def timeline(self) -> Timeline:
        """The place's timeline over every event added so far."""
        if self._failed:
            raise RuntimeError("this fold failed on an earlier add; fold the events again")
        return Timeline(
            policy=self.policy.name,
            policy_version=self.policy.version,
            segments=tuple(self._segments),
        )

    def add(self, events: Iterable[Event]) -> Refold | None:
        """Add events (duplicates of held ones are ignored); return what changed, or None.

        Raises ValueError for events no log can hold (no id, two contents under one id,
        retraction links in a cycle); the fold is then unusable (every later call raises):
        fold the events again.
        """
        if self._failed:
            raise RuntimeError("this fold failed on an earlier add; fold the events again")
        self._failed = True  # until this add completes
        new = self._index(events)
        if not new:
            self._failed = False
            return None
        earliest = self._earliest_change(self._update_force(new))
        refold = None
        while earliest is not None:  # None: informational events linking to nothing
            try:
                refold = self._refold(self._cut(earliest))
                break
            except _Reach as reach:
                earliest = min(earliest, reach.start)
        self._failed = False
        return refold

    # ---------------------------------------------------------------------------------------
    # Indexing and rule 1

    def _index(self, events: Iterable[Event]) -> list[_Fact]:
        facts = self._facts
        new: list[_Fact] = []
        for event in events:
            if event.id is None:
                raise ValueError("project_place needs stored events: an event has no id")
            seen = facts.get(event.id)
            if seen is not None:
                if seen.event != event:
                    raise ValueError(f"two different events share the id {event.id}")
                continue
            start, end = valid_interval(event.occurred)
            fact = _Fact(
                event, event.id, event_type(event), start, end, source_key(event.source.name)
            )
            facts[fact.id] = fact
            new.append(fact)
        if not new:
            return new
        claimable: list[_Entry] = []
        contests: list[_Entry] = []
        encirclements: list[_Entry] = []
        enders: list[_Entry] = []
        starts: list[datetime] = []
        ends: list[datetime] = []
        for fact in new:
            entry = (fact.start, fact.id.int, fact.id)
            assertion = _assertion(fact)
            if assertion is not None:
                self._assertions[fact.id] = assertion
                claimable.append(entry)
            if fact.kind in CONTESTS:
                contests.append(entry)
            if assertion is not None or fact.kind in CONTESTS:
                starts.append(fact.start)
                ends.append(fact.end)
            if fact.kind == "encirclement":
                encirclements.append(entry)
            if fact.kind in ENDS_SIEGE:
                enders.append(entry)
            withdraws: list[uuid.UUID] = []
            confirms: set[tuple[uuid.UUID, str]] = set()
            for link in fact.event.relates_to:
                if link.relation in WITHDRAWS and link.event not in withdraws:
                    withdraws.append(link.event)
                    self._withdrawers.setdefault(link.event, []).append(fact.id)
                elif link.relation in ("confirms", "denies") and link.event != fact.id:
                    confirms.add((link.event, link.relation))
            self._withdraws[fact.id] = tuple(withdraws)
            for target, relation in sorted(confirms, key=lambda c: (c[0].int, c[1])):
                self._linkers.setdefault(target, []).append((fact.id, relation))
        _insert(self._starts, starts)
        _insert(self._ends, ends)
        _insert(self._claimable, claimable)
        _insert(self._contests, contests)
        _insert(self._encirclements, encirclements)
        _insert(self._enders, enders)
        return new

    def _withdrawn_by(self, fact: _Fact) -> list[_Fact]:
        """The facts ``fact`` takes out of force when it is in force (same source only)."""
        facts = self._facts
        return [
            facts[target]
            for target in self._withdraws[fact.id]
            if target in facts and facts[target].source == fact.source
        ]

    def _update_force(self, new: Sequence[_Fact]) -> list[_Fact]:
        """Rule 1 for the new facts and all they reach by withdrawing links; return the changed.

        An event is out of force iff some in-force event by the same source links to it with
        a withdrawing relation. Kahn's order on the links among the affected facts decides
        every linker before its targets, so a retraction of a retraction restores the
        original; linkers outside the affected set keep their known force.
        """
        facts, force = self._facts, self._force
        affected = {fact.id: fact for fact in new}
        stack = list(new)
        while stack:
            for target in self._withdrawn_by(stack.pop()):
                if target.id not in affected:
                    affected[target.id] = target
                    stack.append(target)
        pending = dict.fromkeys(affected, 0)
        for fact in affected.values():
            for target in self._withdrawn_by(fact):
                pending[target.id] += 1
        fresh = {fact.id for fact in new}
        changed: list[_Fact] = []
        ready = [event_id for event_id, count in pending.items() if count == 0]
        decided = 0
        while ready:
            fact = affected[ready.pop()]
            decided += 1
            alive = not any(
                force[linker]
                for linker in self._withdrawers.get(fact.id, ())
                if linker in facts and facts[linker].source == fact.source
            )
            if fact.id in fresh or force[fact.id] != alive:
                changed.append(fact)
            force[fact.id] = alive
            for target in self._withdrawn_by(fact):
                pending[target.id] -= 1
                if pending[target.id] == 0:
                    ready.append(target.id)
        if decided != len(affected):
            raise ValueError("retraction links form a cycle; links must point to earlier events")
        return changed

    def _earliest_change(self, changed: Iterable[_Fact]) -> datetime | None:
        """The earliest valid time at which facts whose force changed (or new ones) matter."""
        earliest: datetime | None = None
        for fact in changed:
            if fact.kind not in INFORMATIONAL:
                earliest = fact.start if earliest is None else min(earliest, fact.start)
            for link in fact.event.relates_to:
                target = self._facts.get(link.event)
                claims = link.relation in ("confirms", "denies")
                if claims and target is not None and target.id in self._assertions:
                    start = target.start
                    earliest = start if earliest is None else min(earliest, start)
        return earliest

    # ---------------------------------------------------------------------------------------
    # The cut and the refold

    def _cut(self, earliest: datetime) -> tuple[datetime, int, int] | None:
        """The latest clean cut at or before ``earliest``, with the blocks before it; None: none."""
        cut = earliest
        starts, ends = self._starts, self._ends
        while True:
            i = bisect_left(starts, cut)
            if i - bisect_right(ends, cut) > 0:  # an interval starts before the cut, ends after
                cut = starts[i - 1]
                continue
            k = bisect_left(self._resolved, cut, key=_block_start)
            if k and self._resolved[k - 1].end > cut:
                cut = self._resolved[k - 1].start
                continue
            kp = bisect_left(self._prelim, cut, key=_block_start)
            if kp and self._prelim[kp - 1].end > cut:
                cut = self._prelim[kp - 1].start
                continue
            return (cut, k, kp) if k else None

    def _refold(self, cut: tuple[datetime, int, int] | None) -> Refold:
        since, k, kp = cut if cut is not None else (None, 0, 0)
        lo = 0 if since is None else bisect_left(self._claimable, since, key=_entry_start)
        prelim = _sweep(_blocks(self._claims(lo, before=None)), self._prelim, kp)
        carried = self._prelim[kp - 1].controller if kp else None
        before = _ControllerBefore(prelim, carried)
        resolved = _sweep(_blocks(self._claims(lo, before=before)), self._resolved, k)
        controls, pieces = _control_pieces(resolved, self._controls[k - 1] if k else None, since)
        overlaid = _overlay(pieces, self._spans(since))
        # The new state replaces the old from the cut on.
        del self._prelim[kp:], self._resolved[k:], self._controls[k:]
        self._prelim.extend(prelim)
        self._resolved.extend(resolved)
        self._controls.extend(controls)
        return self._splice(since, overlaid)

    def _splice(self, since: datetime | None, overlaid: list[_Piece]) -> Refold:
        """Put the refolded pieces after the kept ones, joining the two where they continue."""
        if since is None:
            self._pieces = overlaid
            self._segments = [piece.segment() for piece in overlaid]
            return Refold(None, tuple(self._segments))
        pieces = self._pieces
        j = bisect_left(pieces, since, key=_piece_start)
        if j:
            last = pieces[j - 1]
            if last.end > since:  # it went on past the cut: keep its part before
                last = _Piece(
                    last.start, since, last.control, last.status, last.status_by, last.events
                )
            first = overlaid[0] if overlaid else None
            if first is not None and last.continues(
                first.start, first.control, first.status, first.status_by, first.events
            ):
                overlaid[0] = _Piece(
                    last.start,
                    first.end,
                    first.control,
                    first.status,
                    first.status_by,
                    first.events,
                )
                j -= 1
            elif last is not pieces[j - 1]:
                overlaid.insert(0, last)
                j -= 1
        fresh = [piece.segment() for piece in overlaid]
        del pieces[j:], self._segments[j:]
        pieces.extend(overlaid)
        self._segments.extend(fresh)
        return Refold(fresh[0].valid_from if fresh else since, tuple(fresh))

    def _claims(self, lo: int, *, before: _ControllerBefore | None) -> list[_Claim]:
        """Rule 2: the claims on the intervals of claimable facts from index ``lo`` on.

        A claim sits on the interval of the event it is about: an in-force event's own
        claim, and the ``confirms``/``denies`` of in-force linkers. With ``before`` None (the
        preliminary run) denials are left out and an unnamed opponent is no one; otherwise
        an unnamed opponent is the preliminary controller just before the event.
        """
        facts, force, scorer = self._facts, self._force, self._scorer
        claims: list[_Claim] = []
        for _, _, target_id in self._claimable[lo:]:
            direct = force[target_id]
            links = self._linkers.get(target_id)
            if not direct and not links:
                continue
            target = facts[target_id]
            asserted = self._assertions[target_id]
            against = asserted.disfavours
            if asserted.open and before is not None:
                displaced = before(target.start)
                against = displaced if displaced != asserted.favours else None
            if direct:
                claims.append(
                    _make_claim(
                        scorer,
                        target,
                        target,
                        asserted.favours,
                        against,
                        "direct",
                        asserted.changes,
                    )
                )
            for linker_id, relation in links or ():
                if not force[linker_id]:
                    continue
                linker = facts[linker_id]
                if relation == "confirms":
                    claims.append(
                        _make_claim(
                            scorer,
                            linker,
                            target,
                            asserted.favours,
                            against,
                            "confirms",
                            asserted.changes,
                        )
                    )
                elif before is not None:
                    # A denial claims the place for whom the denied event would displace.
                    claims.append(
                        _make_claim(
                            scorer, linker, target, against, asserted.favours, "denies", False
                        )
                    )
        claims.sort(key=lambda c: (c.start, c.end, c.key))
        return claims

    def _spans(self, since: datetime | None) -> list[_Span]:
        """Rule 8's status intervals from ``since`` on (those open at ``since`` start there).

        An encirclement lasts until the first capture or siege lifted in force from its
        start on; a clash or counter-attack, its own interval.
        """
        facts, force = self._facts, self._force
        enders = self._enders

        def ender_from(moment: datetime) -> datetime:
            j = bisect_left(enders, moment, key=_entry_start)
            while j < len(enders) and not force[enders[j][2]]:
                j += 1
            return enders[j][0] if j < len(enders) else _FOREVER

        spans: list[_Span] = []
        lo = 0 if since is None else bisect_left(self._contests, since, key=_entry_start)
        for _, _, event_id in self._contests[lo:]:
            f = facts[event_id]
            if force[event_id] and f.event.side is not None and f.start < f.end:
                spans.append((f.start, f.end, "contest", f.event.side, f.event.opponent, f.id))
        encirclements = self._encirclements
        lo = 0 if since is None else bisect_left(encirclements, since, key=_entry_start)
        if since is not None:
            # Open at the cut: started after the last capture or siege lifted before it.
            j = bisect_right(enders, since, key=_entry_start) - 1
            while j >= 0 and not force[enders[j][2]]:
                j -= 1
            first = 0 if j < 0 else bisect_right(encirclements, enders[j][0], key=_entry_start)
            for _, _, event_id in encirclements[first:lo]:
                f = facts[event_id]
                if force[event_id] and f.event.side is not None:
                    end = ender_from(f.start)
                    spans.append((since, end, "encircle", f.event.side, f.event.opponent, f.id))
        for _, _, event_id in encirclements[lo:]:
            f = facts[event_id]
            if force[event_id] and f.event.side is not None:
                end = ender_from(f.start)
                if f.start < end:
                    spans.append((f.start, end, "encircle", f.event.side, f.event.opponent, f.id))
        return spans


def _insert(index: list[Any], items: list[Any]) -> None:
    """Add ``items`` to the sorted list ``index``: one by one when few, else extend and sort."""
    if len(items) <= 16:
        for item in items:
            insort(index, item)
    else:
        index.extend(items)
        index.sort()


def _block_start(block: _Resolved) -> datetime:
    return block.start


def _piece_start(piece: _Piece) -> datetime:
    return piece.start


_Span: TypeAlias = tuple[datetime, datetime, str, str, Side, uuid.UUID]
"""A status interval: start, end, ``encircle`` or ``contest``, the side, its opponent, the event."""


# --------------------------------------------------------------------------------------------
# Phase 1: facts


@dataclass(frozen=True, slots=True)
class _Fact:
    """An event with what the projection needs of it, computed once."""

    event: Event
    id: uuid.UUID
    kind: str
    start: datetime
    end: datetime
    source: str
    """The source key (:func:`source_key`)."""


# --------------------------------------------------------------------------------------------
# Phase 2: claims


@dataclass(frozen=True, slots=True)
class _Claim:
    start: datetime
    end: datetime
    side: Side
    source: str
    score: _Score
    event: uuid.UUID
    link: LinkKind
    about: uuid.UUID | None
    changes: bool
    """True when the claim explains a change of controller (rule 4, unexplained change)."""
    self_serving: bool
    source_name: str
    key: tuple[str, float, Fraction, str, int, str, int]
    """The order claims are listed in: side, best score first, source, event, link."""


def _claim_key(c: _Claim) -> tuple[str, float, Fraction, str, int, str, int]:
    return c.key


@dataclass(frozen=True, slots=True)
class _Score:
    """An exact score, with its negation and nearest double precomputed for sorting."""

    exact: Fraction
    approx: float
    negated: Fraction

    @classmethod
    def of(cls, exact: Fraction) -> _Score:
        return cls(exact, float(exact), -exact)


def _side_key(side: Side) -> str:
    return "" if side is None else side


@dataclass(frozen=True, slots=True)
class _Assertion:
    """What a control-bearing event asserts, before any timeline is known."""

    favours: Side
    disfavours: Side
    open: bool
    """True when the side it takes the place from is not named and must be looked up."""
    changes: bool


def _assertion(fact: _Fact) -> _Assertion | None:
    """Rule 2: the control claim an event makes, if any."""
    event = fact.event
    if fact.kind in GIVES_TO_SIDE:
        side = event.side
        named = event.opponent if event.opponent != side else None
        return _Assertion(side, named, named is None, fact.kind in CHANGES_CONTROL)
    if fact.kind in GIVES_TO_OPPONENT:
        return _Assertion(event.opponent, event.side, False, True)
    return None


class _Scorer:
    """Rule 5 scores, cached by the few inputs they depend on."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._cache: dict[tuple[str, int, str, str, Side, Side], _Score] = {}

    def score(self, fact: _Fact, favours: Side, disfavours: Side) -> _Score:
        event = fact.event
        alignment = event.source.alignment
        key = (
            event.source.reliability,
            event.credibility,
            event.hedge,
            alignment,
            favours if alignment == favours else None,
            disfavours if alignment == disfavours else None,
        )
        cached = self._cache.get(key)
        if cached is None:
            cached = _Score.of(
                self.policy.score(
                    reliability=event.source.reliability,
                    credibility=event.credibility,
                    hedge=event.hedge,
                    alignment=alignment,
                    favours=favours,
                    disfavours=disfavours,
                )
            )
            self._cache[key] = cached
        return cached


class _ControllerBefore:
    """The preliminary controller just before an instant (piecewise constant lookup).

    ``blocks`` are the preliminary blocks from the cut on; ``carried`` is the controller the
    blocks before the cut leave (an instant at or after the cut that no block precedes has it).
    """

    def __init__(self, blocks: Sequence[_Resolved], carried: Side) -> None:
        self._starts = [block.start for block in blocks]
        self._controllers = [block.controller for block in blocks]
        self._carried = carried

    def __call__(self, moment: datetime) -> Side:
        i = bisect_left(self._starts, moment) - 1
        return self._controllers[i] if i >= 0 else self._carried


def _make_claim(
    scorer: _Scorer,
    by: _Fact,
    target: _Fact,
    favours: Side,
    disfavours: Side,
    link: LinkKind,
    changes: bool,
) -> _Claim:
    """A claim by ``by`` on ``target``'s interval (rules 2 and 5)."""
    alignment = by.event.source.alignment
    score = scorer.score(by, favours, disfavours)
    about = None if link == "direct" else target.id
    return _Claim(
        start=target.start,
        end=target.end,
        side=favours,
        source=by.source,
        score=score,
        event=by.id,
        link=link,
        about=about,
        changes=changes,
        self_serving=alignment != NEUTRAL and alignment == favours,
        source_name=by.event.source.name,
        key=(
            _side_key(favours),
            -score.approx,
            score.negated,
            by.source,
            by.id.int,
            link,
            -1 if about is None else about.int,
        ),
    )


# --------------------------------------------------------------------------------------------
# Phase 3: blocks and the sweep


@dataclass(slots=True)
class _Block:
    start: datetime
    end: datetime
    claims: list[_Claim]
    disputed: bool


def _blocks(claims: Sequence[_Claim]) -> list[_Block]:
    """Rule 4 (overlap) and rule 3: cut the claims into disjoint blocks in time order.

    A claim is *disputing* when it overlaps a claim naming another controller; the union of
    disputing claims, merged where they overlap, gives the dispute regions. Every claim
    overlapping a region competes in it. What is left of the other claims outside the
    regions agrees wherever it overlaps, and forms undisputed blocks.
    """
    if not claims:
        return []
    points = sorted({c.start for c in claims} | {c.end for c in claims})
    at = {point: i for i, point in enumerate(points)}
    starting: list[list[Side]] = [[] for _ in points]
    ending: list[list[Side]] = [[] for _ in points]
    for c in claims:
        starting[at[c.start]].append(c.side)
        ending[at[c.end]].append(c.side)
    # conflicts[i]: how many of the elementary pieces before points[i] have >= 2 controllers.
    conflicts = [0] * len(points)
    active: dict[Side, int] = {}
    for i in range(len(points) - 1):
        for side in ending[i]:
            active[side] -= 1
            if active[side] == 0:
                del active[side]
        for side in starting[i]:
            active[side] = active.get(side, 0) + 1
        conflicts[i + 1] = conflicts[i] + (len(active) >= 2)

    regions: list[list[datetime]] = []
    for c in claims:  # sorted by start
        if conflicts[at[c.end]] == conflicts[at[c.start]]:
            continue
        if regions and c.start < regions[-1][1]:
            regions[-1][1] = max(regions[-1][1], c.end)
        else:
            regions.append([c.start, c.end])
    region_claims: list[list[_Claim]] = [[] for _ in regions]
    region_starts = [r[0] for r in regions]

    leftovers: list[tuple[datetime, datetime, _Claim]] = []
    for c in claims:
        i = max(bisect_right(region_starts, c.start) - 1, 0)
        cursor = c.start
        while i < len(regions) and regions[i][0] < c.end:
            r_start, r_end = regions[i]
            if r_end > c.start:
                region_claims[i].append(c)
                if r_start > cursor:
                    leftovers.append((cursor, r_start, c))
                cursor = max(cursor, r_end)
            i += 1
        if cursor < c.end:
            leftovers.append((cursor, c.end, c))

    blocks = [
        _Block(start, end, members, True)
        for (start, end), members in zip(regions, region_claims, strict=True)
    ]
    leftovers.sort(key=lambda item: (item[0], item[1], item[2].key))
    current: _Block | None = None
    for start, end, c in leftovers:
        if current is not None and start < current.end:
            current.end = max(current.end, end)
            current.claims.append(c)
        else:
            current = _Block(start, end, [c], False)
            blocks.append(current)
    blocks.sort(key=lambda b: b.start)
    return blocks


@dataclass(slots=True)
class _Tally:
    """Per side, each source's best score, and whether any claim is not self-serving."""

    best: dict[Side, dict[str, Fraction]] = field(default_factory=dict)
    assessed: dict[Side, bool] = field(default_factory=dict)

    def add(self, claim: _Claim) -> None:
        sources = self.best.setdefault(claim.side, {})
        if claim.score.exact > sources.get(claim.source, -1):
            sources[claim.source] = claim.score.exact
        if not claim.self_serving:
            self.assessed[claim.side] = True
        else:
            self.assessed.setdefault(claim.side, False)

    def absorb(self, other: _Tally) -> None:
        for side, sources in other.best.items():
            mine = self.best.setdefault(side, {})
            for source, score in sources.items():
                if score > mine.get(source, -1):
                    mine[source] = score
        for side, assessed in other.assessed.items():
            self.assessed[side] = self.assessed.get(side, False) or assessed

    def supports(self) -> dict[Side, Fraction]:
        """Rule 5: noisy-OR over each side's sources, in sorted order (rule 6)."""
        result: dict[Side, Fraction] = {}
        for side, sources in self.best.items():
            miss = Fraction(1)
            for source in sorted(sources):
                miss *= 1 - sources[source]
            result[side] = 1 - miss
        return result


@dataclass(slots=True)
class _Resolved:
    """A block with its outcome. ``parts`` and ``tally`` grow when blocks merge."""

    start: datetime
    end: datetime
    parts: list[Sequence[_Claim]]
    tally: _Tally
    disputed: bool
    controller: Side
    support: Fraction
    supports: dict[Side, Fraction]
    tie: bool
    previous: Side
    unexplained: tuple[str, str] | None
    anchor: int | None
    """Index of the latest block in which the controller after this one had claims."""


def _resolve(
    start: datetime,
    end: datetime,
    parts: list[Sequence[_Claim]],
    tally: _Tally,
    *,
    disputed: bool,
    previous: Side,
    unexplained: tuple[str, str] | None,
) -> _Resolved:
    """Rule 5: the side with the higher support wins; a tie keeps the previous controller."""
    supports = tally.supports()
    top = max(supports.values())
    leaders = [side for side, support in supports.items() if support == top]
    tie = len(leaders) > 1
    controller = previous if tie else leaders[0]
    return _Resolved(
        start=start,
        end=end,
        parts=parts,
        tally=tally,
        disputed=disputed,
        controller=controller,
        support=supports.get(controller, Fraction(0)),
        supports=supports,
        tie=tie,
        previous=previous,
        unexplained=unexplained,
        anchor=None,
    )


def _sweep(blocks: Sequence[_Block], kept: Sequence[_Resolved], floor: int) -> list[_Resolved]:
    """Rules 3-5 in time order: carry control forward, resolve blocks, widen unexplained changes.

    An undisputed block naming B, when A held the place and none of the block's claims is a
    change (a capture, withdrawal, base established or evacuated), is an unexplained change:
    the blocks from A's latest supporting block up to B's become one dispute (rule 4).

    The sweep resumes after ``kept[:floor]``, the resolved blocks before the cut, and returns
    the blocks from the cut on (their ``anchor`` indexes count the kept ones). Kept blocks are
    never changed: when a change would reopen one, :class:`_Reach` says from where to refold.
    """
    resolved: list[_Resolved] = []
    last = kept[floor - 1] if floor else None
    for block in blocks:
        before = resolved[-1] if resolved else last
        previous = before.controller if before is not None else None
        anchor = before.anchor if before is not None else None
        claimed = block.claims[0].side
        tally = _Tally()
        for c in block.claims:
            tally.add(c)
        if (
            not block.disputed
            and anchor is not None
            and previous is not None
            and claimed is not None
            and claimed != previous
            and not any(c.changes for c in block.claims)
        ):
            if anchor < floor:
                raise _Reach(kept[anchor].start)
            base = resolved[anchor - floor]
            for later in resolved[anchor - floor + 1 :]:
                base.parts.extend(later.parts)
                base.tally.absorb(later.tally)
            base.parts.append(block.claims)
            base.tally.absorb(tally)
            if anchor == 0:
                earlier = None
            elif anchor - 1 < floor:
                earlier = kept[anchor - 1]
            else:
                earlier = resolved[anchor - 1 - floor]
            del resolved[anchor - floor :]
            outcome = _resolve(
                base.start,
                block.end,
                base.parts,
                base.tally,
                disputed=True,
                previous=earlier.controller if earlier else None,
                unexplained=(previous, claimed),
            )
            anchor = earlier.anchor if earlier else None
        else:
            outcome = _resolve(
                block.start,
                block.end,
                [block.claims],
                tally,
                disputed=block.disputed,
                previous=previous,
                unexplained=None,
            )
        if outcome.controller in outcome.supports:
            anchor = floor + len(resolved)
        outcome.anchor = anchor
        resolved.append(outcome)
    return resolved


# --------------------------------------------------------------------------------------------
# Phase 4: control pieces, status overlay, merge


@dataclass(frozen=True, slots=True)
class _Control:
    """The control part of a segment's content, shared by the pieces it is cut into."""

    controller: Side
    disputed: bool
    confidence: int
    basis: Basis
    claims: tuple[Claim, ...]
    supports: tuple[Support, ...]
    reason: str | None
    events: tuple[uuid.UUID, ...]

    def same(self, other: _Control) -> bool:
        return self is other or (
            self.controller == other.controller
            and self.disputed == other.disputed
            and self.confidence == other.confidence
            and self.basis == other.basis
            and self.reason == other.reason
            and self.claims == other.claims
            and self.supports == other.supports
            and self.events == other.events
        )


def _uuid_key(value: uuid.UUID) -> int:
    return value.int


def _percent(value: Fraction) -> int:
    """``value`` x 100 rounded half up."""
    return math.floor(value * 100 + Fraction(1, 2))


def _percent_text(value: Fraction) -> str:
    hundredths = math.floor(value * 10_000 + Fraction(1, 2))
    return f"{hundredths // 100}.{hundredths % 100:02d}%"


def _label(side: Side) -> str:
    return "no controller" if side is None else side


def _reason(block: _Resolved, counts: Mapping[Side, int]) -> str:
    if block.unexplained is not None:
        held, claimed = block.unexplained
        cause = (
            f"Unexplained change: a control claim for {claimed} while {held} held the place, "
            f"with no claim giving it to {claimed} in between."
        )
    else:
        cause = "Claims for different controllers overlap in valid time."
    ranked = sorted(block.supports.items(), key=lambda item: (-item[1], _side_key(item[0])))
    listing = ", ".join(
        f"{_label(side)} {_percent_text(support)} "
        f"({counts[side]} source{'' if counts[side] == 1 else 's'})"
        for side, support in ranked
    )
    if not block.tie:
        return f"{cause} {_label(block.controller)} has the higher support: {listing}."
    top = ranked[0][1]
    tied = " and ".join(_label(side) for side, support in ranked if support == top)
    if block.previous is None:
        kept = "there was no controller before, so none is named"
    else:
        kept = f"the previous controller, {block.previous}, is kept"
    return f"{cause} Tie at {_percent_text(top)} between {tied}; {kept}. Supports: {listing}."


def _control_of(block: _Resolved, previous: _Control | None) -> _Control:
    """The content of a resolved block's segment (rules 5, 7 and 8's ``disputed``).

    A controller kept by a tie, with no claim of its own in the block, keeps the confidence,
    basis and events of the segment before: the tie added no evidence for anyone.
    """
    winner = block.controller
    claims = [c for part in block.parts for c in part]
    if winner not in block.supports and previous is not None:
        confidence, basis, events = previous.confidence, previous.basis, previous.events
    else:
        confidence = _percent(block.support)
        basis = "assessed" if block.tally.assessed.get(winner, False) else "claimed"
        events = tuple(sorted({c.event for c in claims if c.side == winner}, key=_uuid_key))
    if not block.disputed:
        return _Control(winner, False, confidence, basis, (), (), None, events)
    counts = {side: len(sources) for side, sources in block.tally.best.items()}
    claims.sort(key=_claim_key)
    listed = tuple(
        Claim(
            side=c.side,
            source=c.source_name,
            score=c.score.approx,
            event=c.event,
            link=c.link,
            about=c.about,
        )
        for c in claims
    )
    supports = tuple(
        Support(side=side, support=float(support), sources=counts[side])
        for side, support in sorted(block.supports.items(), key=lambda i: _side_key(i[0]))
    )
    return _Control(
        winner,
        True,
        confidence,
        basis,
        listed,
        supports,
        _reason(block, counts),
        events,
    )


def _persisted(control: _Control) -> _Control:
    """Rule 3: a block's outcome after its end, undisputed, until the next block."""
    return _Control(
        control.controller, False, control.confidence, control.basis, (), (), None, control.events
    )


def _control_pieces(
    resolved: Sequence[_Resolved], previous: _Control | None, since: datetime | None
) -> tuple[list[_Control], list[tuple[datetime, datetime, _Control]]]:
    """Rule 3: each block, then its outcome persisting (undisputed) until the next block.

    Resuming at the cut ``since``, ``previous`` is the control of the last block before it,
    which persists from the cut to the first block. Returns each block's control and the
    pieces from the cut on.
    """
    controls: list[_Control] = []
    pieces: list[tuple[datetime, datetime, _Control]] = []
    control = previous
    if since is not None and control is not None:
        following = resolved[0].start if resolved else _FOREVER
        if following > since:
            pieces.append((since, following, _persisted(control)))
    for i, block in enumerate(resolved):
        control = _control_of(block, control)
        controls.append(control)
        pieces.append((block.start, block.end, control))
        following = resolved[i + 1].start if i + 1 < len(resolved) else _FOREVER
        if following > block.end:
            pieces.append((block.end, following, _persisted(control)))
    return controls, pieces


_NO_CONTROL: Final = _Control(None, False, 0, "claimed", (), (), None, ())
"""Before any control claim: no controller, no claim behind it."""


def _overlay(
    pieces: Sequence[tuple[datetime, datetime, _Control]], spans: Sequence[_Span]
) -> list[_Piece]:
    """Rule 8: statuses over the control pieces, then merge neighbours with equal content.

    A status report is a claim too (DESIGN section 2): a place reported contested or
    encircled before any report of who holds it starts its timeline there, with no
    controller until a control claim names one.
    """
    if not pieces and not spans:
        return []
    first_control = pieces[0][0] if pieces else _FOREVER
    first_status = min((span[0] for span in spans), default=_FOREVER)
    if first_status < first_control:
        pieces = [(first_status, first_control, _NO_CONTROL), *pieces]

    points = sorted(
        {p for start, end, _ in pieces for p in (start, end)}
        | {p for span in spans for p in (span[0], span[1])}
    )
    opening: dict[datetime, list[int]] = {}
    closing: dict[datetime, list[int]] = {}
    for n, span in enumerate(spans):
        opening.setdefault(span[0], []).append(n)
        closing.setdefault(span[1], []).append(n)

    encircling: dict[str, set[uuid.UUID]] = {}
    contesting: dict[tuple[str, Side], set[uuid.UUID]] = {}
    out: list[_Piece] = []
    piece = 0
    for i in range(len(points) - 1):
        here, there = points[i], points[i + 1]
        for n in closing.get(here, ()):
            _, _, kind, side, opponent, event_id = spans[n]
            bucket = encircling[side] if kind == "encircle" else contesting[(side, opponent)]
            bucket.discard(event_id)
        for n in opening.get(here, ()):
            _, _, kind, side, opponent, event_id = spans[n]
            if kind == "encircle":
                encircling.setdefault(side, set()).add(event_id)
            else:
                contesting.setdefault((side, opponent), set()).add(event_id)
        while pieces[piece][1] <= here:
            piece += 1
        control = pieces[piece][2]
        status, status_by, drivers = _status(control.controller, encircling, contesting)
        events = control.events
        if drivers:
            events = tuple(sorted(drivers.union(events), key=_uuid_key))
        if out and out[-1].continues(here, control, status, status_by, events):
            out[-1].end = there
        else:
            out.append(_Piece(here, there, control, status, status_by, events))
    return out


def _status(
    controller: Side,
    encircling: Mapping[str, set[uuid.UUID]],
    contesting: Mapping[tuple[str, Side], set[uuid.UUID]],
) -> tuple[Status, Side, set[uuid.UUID]]:
    """Rule 8 at one instant: contested wins over encircled; no controller is unknown.

    A clash names its ``side`` as the contesting side, or its ``opponent`` when the side is the
    controller itself. A side does not besiege a place it holds. When several sides qualify,
    a side other than the controller comes first, then alphabetical order.
    """
    drivers: set[uuid.UUID] = set()
    contenders: list[str] = []
    for (side, opponent), ids in contesting.items():
        if ids:
            if side == controller and opponent is not None and opponent != side:
                contenders.append(opponent)
            else:
                contenders.append(side)
            drivers |= ids
    if contenders:
        return "contested", min(contenders, key=lambda s: (s == controller, s)), drivers
    besiegers = sorted(s for s, ids in encircling.items() if ids and s != controller)
    if besiegers:
        for s in besiegers:
            drivers |= encircling[s]
        return "encircled", besiegers[0], drivers
    return ("controlled" if controller is not None else "unknown"), None, drivers


@dataclass(slots=True)
class _Piece:
    """A segment under construction."""

    start: datetime
    end: datetime
    control: _Control
    status: Status
    status_by: Side
    events: tuple[uuid.UUID, ...]

    def continues(
        self,
        start: datetime,
        control: _Control,
        status: Status,
        status_by: Side,
        events: tuple[uuid.UUID, ...],
    ) -> bool:
        """True when a piece starting at ``start`` with this content extends this one."""
        return (
            self.end == start
            and self.control.same(control)
            and self.status == status
            and self.status_by == status_by
            and (self.events is events or self.events == events)
        )

    def segment(self) -> Segment:
        control = self.control
        return Segment(
            valid_from=self.start,
            valid_to=None if self.end == _FOREVER else self.end,
            controller=control.controller,
            status=self.status,
            status_by=self.status_by,
            disputed=control.disputed,
            confidence=control.confidence,
            basis=control.basis,
            claims=control.claims,
            supports=control.supports,
            reason=control.reason,
            events=self.events,
        )
