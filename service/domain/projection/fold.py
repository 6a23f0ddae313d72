"""The fold of one place, kept between additions: a sweep over pieces of valid time.

The valid axis is cut at every **point**: the start and end of every in-force claim (rule 3)
and of every status interval (an encirclement's start, a capture's or siege lifted's start,
a clash's or counter-attack's start and end). The sweep visits the pieces between
consecutive points in time order. At a claim boundary the covering claims are decided
(:mod:`~service.domain.projection.decide`); a piece that only a status boundary starts, or
that no claim covers, keeps the control outcome before it. After each piece the fold keeps
the sweep's **state**: the holding (controller and standing evidence), the control content,
the end of the last covered piece, the covering claims and the open statuses. The state is
all the future depends on, so a later addition resumes the sweep at the piece where it first
matters and stops as soon as the new state equals the kept one at the same point, past every
changed point (the new timeline has rejoined the old). Segments are runs of pieces with equal
content.
"""

from __future__ import annotations

import uuid
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import msgspec

from contracts.events import Event
from contracts.timeline import LinkKind, Segment, Status, Timeline
from service.domain.policy import SERVED, Policy
from service.domain.projection.claims import Claim, Side
from service.domain.projection.decide import NO_CONTROL, Ctrl, Decider, Holding
from service.domain.projection.facts import (
    CONTESTS,
    ENDS_SIEGE,
    SPEAKS_OF,
    WITHDRAWS,
    Assertion,
    Fact,
    Spec,
    assertion_of,
)
from service.domain.projection.scores import Arithmetic, Scorer
from service.domain.projection.status import Contest, Siege, status_of


@dataclass(frozen=True, slots=True)
class Part:
    """One stretch of the timeline an addition changed: the segments whose ``valid_from``
    lies in ``[since, until)`` are now ``segments`` (``None``: from the start, to the end)."""

    since: datetime | None
    until: datetime | None
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class Refold:
    """What :meth:`PlaceFold.add` changed: disjoint parts, in valid-time order."""

    parts: tuple[Part, ...]


class _State(msgspec.Struct, frozen=True, gc=False):
    """The sweep's state at the end of a piece: everything later pieces depend on."""

    holding: Holding | None
    ctrl: Ctrl | None
    covered_end: datetime | None
    """The end of the last piece claims covered (an unexplained change marks back to it)."""
    active: tuple[Claim, ...]
    contesting: tuple[Contest, ...]
    encircling: tuple[Siege, ...]


_INITIAL: Final = _State(None, None, None, (), (), ())


class _Out(msgspec.Struct, frozen=True, gc=False, eq=False):
    """A piece's content: its control part and its status. Compared by :func:`_same_out`
    (what a segment shows), never by ``==``."""

    ctrl: Ctrl
    status: Status
    status_by: Side
    events: tuple[uuid.UUID, ...]
    drivers: tuple[uuid.UUID, ...]
    """The status events among ``events``."""


def _same(a: object, b: object) -> bool:
    return a is b or a == b


def _same_out(a: _Out, b: _Out) -> bool:
    """Whether two pieces show the same content (and so are one segment when adjacent)."""
    return a is b or (
        (a.ctrl is b.ctrl or a.ctrl == b.ctrl)
        and a.status == b.status
        and a.status_by == b.status_by
        and a.events == b.events
    )


class PlaceFold:
    """One place's projection, kept between additions so that new events refold only what
    they change. :func:`~service.domain.projection.project_place` is ``add`` on an empty
    fold: the same code."""

    def __init__(self, policy: Policy = SERVED) -> None:
        self.policy = policy
        self._scorer = Scorer.of(policy)
        self._decider = Decider(Arithmetic(self._scorer.denominator))
        # Facts and what is known of them, by ``Fact.key`` (the id as an int).
        self._facts: dict[int, Fact] = {}
        self._force: dict[int, bool] = {}
        self._assertions: dict[int, Assertion] = {}
        self._withdrawers: dict[int, list[int]] = {}
        """For a target, the facts naming it with a withdrawing relation (any source)."""
        self._linkers: dict[int, list[tuple[int, str]]] = {}
        """For a target, the facts that confirm or deny it, with the relation."""
        # The structure the sweep reads: what starts at each point.
        self._specs: dict[tuple[int, int, str], Spec] = {}
        self._specs_at: dict[datetime, dict[tuple[int, int, str], Spec]] = {}
        self._contests_at: dict[datetime, dict[int, Fact]] = {}
        self._sieges_at: dict[datetime, dict[int, Fact]] = {}
        self._enders_at: dict[datetime, set[int]] = {}
        self._claim_points: dict[datetime, int] = {}
        self._all_points: dict[datetime, int] = {}
        self._points: list[datetime] = []
        # The pieces: piece j is [starts[j], starts[j + 1]) (the last one is open-ended).
        self._starts: list[datetime] = []
        self._states: list[_State] = []
        self._outs: list[_Out | None] = []
        self._segments: list[Segment] = []
        self._seg_starts: list[datetime] = []
        self._failed = False

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

    def in_force(self) -> dict[uuid.UUID, bool]:
        """Whether each event is in force (rule 1), by event id."""
        facts = self._facts
        return {facts[key].id: alive for key, alive in self._force.items()}

    def add(self, events: Iterable[Event | Fact]) -> Refold | None:
        """Add events, or their facts (:meth:`Fact.from_payload`: what a rebuild reads), and
        return what changed, or None; duplicates of held ones are ignored.

        Raises ValueError for events no log can hold (no id, two contents under one id,
        retraction links in a cycle); the fold is then unusable (every later call raises):
        fold the events again.
        """
        if self._failed:
            raise RuntimeError("this fold failed on an earlier add; fold the events again")
        self._failed = True  # until this add completes
        new = self._index(events)
        refold = None
        if new:
            fresh = {fact.key for fact in new}
            changed = self._update_force(new, fresh)
            points = self._restructure(changed, fresh)
            if points:
                refold = self._refold(sorted(points))
        self._failed = False
        return refold

    # ---------------------------------------------------------------------------------------
    # Rule 1: indexing and force

    def _index(self, events: Iterable[Event | Fact]) -> list[Fact]:
        facts = self._facts
        new: list[Fact] = []
        for event in events:
            fact = event if isinstance(event, Fact) else Fact.of(event)
            key = fact.key
            seen = facts.get(key)
            if seen is not None:
                if seen != fact:
                    raise ValueError(f"two different events share the id {fact.id}")
                continue
            facts[key] = fact
            new.append(fact)
            assertion = assertion_of(fact)
            if assertion is not None:
                self._assertions[key] = assertion
            if fact.links:
                withdrawn: set[int] = set()
                spoken: set[tuple[int, str]] = set()
                for target, relation in fact.links:
                    if relation in WITHDRAWS and target not in withdrawn:
                        withdrawn.add(target)
                        self._withdrawers.setdefault(target, []).append(key)
                    elif relation in SPEAKS_OF and target != key:
                        spoken.add((target, relation))
                for target, relation in sorted(spoken):
                    self._linkers.setdefault(target, []).append((key, relation))
        return new

    def _withdrawn_by(self, fact: Fact) -> list[Fact]:
        """The facts ``fact`` takes out of force when it is in force (same source only)."""
        if not fact.links:
            return []
        facts = self._facts
        seen: set[int] = set()
        found = []
        for target, relation in fact.links:
            if relation in WITHDRAWS and target not in seen:
                seen.add(target)
                held = facts.get(target)
                if held is not None and held.source == fact.source:
                    found.append(held)
        return found

    def _update_force(self, new: Sequence[Fact], fresh: set[int]) -> list[Fact]:
        """Rule 1 for the new facts and all they reach by withdrawing links; return the facts
        that are new or whose force changed.

        An event is out of force iff some in-force event by the same source links to it with
        a withdrawing relation. Kahn's order on the links among the affected facts decides
        every linker before its targets, so a retraction of a retraction restores the
        original; linkers outside the affected set keep their known force.
        """
        facts, force = self._facts, self._force
        withdrawers = self._withdrawers
        affected = {fact.key: fact for fact in new}
        stack = [fact for fact in new if fact.links]
        while stack:
            for target in self._withdrawn_by(stack.pop()):
                if target.key not in affected:
                    affected[target.key] = target
                    stack.append(target)
        pending = dict.fromkeys(affected, 0)
        for fact in affected.values():
            for target in self._withdrawn_by(fact):
                pending[target.key] += 1
        changed: list[Fact] = []
        ready = sorted(key for key, count in pending.items() if count == 0)
        decided = 0
        while ready:
            key = ready.pop()
            fact = affected[key]
            decided += 1
            linkers = withdrawers.get(key)
            alive = not linkers or not any(
                force.get(linker, False)
                for linker in linkers
                if linker in facts and facts[linker].source == fact.source
            )
            if force.get(key) != alive or key in fresh:
                changed.append(fact)
            force[key] = alive
            for target in self._withdrawn_by(fact):
                pending[target.key] -= 1
                if pending[target.key] == 0:
                    ready.append(target.key)
        if decided != len(affected):
            raise ValueError("retraction links form a cycle; links must point to earlier events")
        return changed

    # ---------------------------------------------------------------------------------------
    # Rule 2 and the points: what starts where

    def _restructure(self, changed: Sequence[Fact], fresh: set[int]) -> set[datetime]:
        """Bring the claims and statuses in step with the changed facts; return the points
        (starts and ends) of everything added or removed."""
        points: set[datetime] = set()
        facts, force, assertions = self._facts, self._force, self._assertions
        for fact in changed:
            key = fact.key
            alive = force[key]
            own = assertions.get(key)
            if own is not None:
                self._set_spec(fact, fact, "direct", own, alive, points)
            for target_key, relation in fact.links:
                if relation not in SPEAKS_OF or target_key == key:
                    continue
                target = facts.get(target_key)
                asserted = assertions.get(target_key)
                if target is not None and asserted is not None:
                    self._set_spec(fact, target, SPEAKS_OF[relation], asserted, alive, points)
            if key in fresh and own is not None:
                # Confirmations and denials that arrived before the event they speak of.
                for linker_id, relation in self._linkers.get(key, ()):
                    linker = facts.get(linker_id)
                    if linker is not None and linker_id != key:
                        link = SPEAKS_OF[relation]
                        self._set_spec(linker, fact, link, own, force[linker_id], points)
            kind = fact.kind
            contests = kind in CONTESTS and fact.side is not None and fact.start < fact.end
            if contests and _toggle(self._contests_at, fact.start, fact, alive):
                self._count(fact.start, 1 if alive else -1, claim=False)
                self._count(fact.end, 1 if alive else -1, claim=False)
                points.update((fact.start, fact.end))
            besieges = kind == "encirclement" and fact.side is not None
            if besieges and _toggle(self._sieges_at, fact.start, fact, alive):
                self._count(fact.start, 1 if alive else -1, claim=False)
                points.add(fact.start)
            if kind in ENDS_SIEGE:
                enders = self._enders_at.get(fact.start)
                if alive != (enders is not None and fact.key in enders):
                    if alive:
                        self._enders_at.setdefault(fact.start, set()).add(fact.key)
                    else:
                        assert enders is not None
                        enders.discard(fact.key)
                        if not enders:
                            del self._enders_at[fact.start]
                    self._count(fact.start, 1 if alive else -1, claim=False)
                    points.add(fact.start)
        return points

    def _set_spec(
        self,
        maker: Fact,
        target: Fact,
        link: LinkKind,
        assertion: Assertion,
        present: bool,
        points: set[datetime],
    ) -> None:
        key = (maker.key, target.key, link)
        held = self._specs.get(key)
        if present == (held is not None):
            return
        step = 1 if present else -1
        if present:
            spec = self._specs[key] = Spec(maker, target, link, assertion)
            self._specs_at.setdefault(target.start, {})[key] = spec
        else:
            del self._specs[key]
            starting = self._specs_at[target.start]
            del starting[key]
            if not starting:
                del self._specs_at[target.start]
        self._count(target.start, step, claim=True)
        self._count(target.end, step, claim=True)
        points.update((target.start, target.end))

    def _count(self, point: datetime, step: int, *, claim: bool) -> None:
        if claim:
            left = self._claim_points.get(point, 0) + step
            if left:
                self._claim_points[point] = left
            else:
                del self._claim_points[point]
        left = self._all_points.get(point, 0) + step
        if left:
            if left == step:  # new
                insort(self._points, point)
            self._all_points[point] = left
        else:
            del self._all_points[point]
            del self._points[bisect_left(self._points, point)]

    # ---------------------------------------------------------------------------------------
    # The sweep

    def _resume(self, change: datetime) -> tuple[int, _State]:
        """Where to restart for a change at ``change``: the index (in the kept pieces) of the
        first piece to recompute and the state before it.

        The piece holding the instant just before ``change``, and, when the time before it is
        uncovered, back to the end of the last covered piece (an unexplained change marks
        back to there).
        """
        starts = self._starts
        k = bisect_left(starts, change) - 1
        if k < 0:
            return 0, _INITIAL
        state = self._states[k - 1] if k else _INITIAL
        covered = state.covered_end
        if covered is not None and covered < starts[k]:
            k = bisect_left(starts, covered)
            state = self._states[k - 1] if k else _INITIAL
        return k, state

    def _refold(self, changes: list[datetime]) -> Refold:
        points = self._points
        spans: list[list[datetime | None]] = []
        h = 0  # the next change not yet swept past
        k, state = self._resume(changes[0])
        # From scratch (k == 0) the new points may begin before the kept ones.
        i = bisect_left(points, self._starts[k]) if k else 0
        new_starts: list[datetime] = []
        new_states: list[_State] = []
        new_outs: list[_Out | None] = []
        previous: _Out | None = self._outs[k - 1] if k else None
        while True:
            if i >= len(points):
                spans.append(self._splice(k, len(self._starts), new_starts, new_states, new_outs))
                break
            t = points[i]
            while h < len(changes) and changes[h] < t:
                h += 1
            if new_starts and (h == len(changes) or changes[h] > t):
                # Past every change so far: has the new sweep rejoined the kept one at t?
                j = bisect_left(self._starts, t)
                if (
                    j < len(self._starts)
                    and self._starts[j] == t
                    and j > 0
                    and state.covered_end in (t, None)
                    and _same(state, self._states[j - 1])
                ):
                    spans.append(self._splice(k, j, new_starts, new_states, new_outs))
                    if h == len(changes):
                        break
                    k, state = self._resume(changes[h])
                    i = bisect_left(points, self._starts[k])
                    previous = self._outs[k - 1] if k else None
                    new_starts, new_states, new_outs = [], [], []
                    continue
            state, out = self._enter(i, t, state, previous, new_starts, new_outs)
            new_starts.append(t)
            new_states.append(state)
            new_outs.append(out)
            previous = out
            i += 1
        return Refold(self._parts(spans))

    def _enter(
        self,
        i: int,
        t: datetime,
        state: _State,
        previous: _Out | None,
        new_starts: list[datetime],
        new_outs: list[_Out | None],
    ) -> tuple[_State, _Out | None]:
        """Sweep the piece starting at point ``t`` (index ``i``): its state and content."""
        points = self._points
        after = points[i + 1] if i + 1 < len(points) else None
        active = state.active
        boundary = t in self._claim_points  # only there can claims start or end
        if boundary and active and any(c.end <= t for c in active):
            active = tuple(c for c in active if c.end > t)
        starting = self._specs_at.get(t)
        holding = state.holding
        if starting:
            before = holding.controller if holding is not None else None
            scorer = self._scorer
            active = tuple(
                sorted(
                    (*active, *(spec.resolve(scorer, before) for spec in starting.values())),
                    key=_order,
                )
            )
        contesting = state.contesting
        if contesting and contesting[0][0] <= t:  # sorted by end
            contesting = tuple(c for c in contesting if c[0] > t)
        opened = self._contests_at.get(t)
        if opened:
            contesting = tuple(
                sorted(
                    (
                        *contesting,
                        *(_contest(fact) for fact in opened.values()),
                    ),
                    key=_contest_key,
                )
            )
        encircling = state.encircling
        if t in self._enders_at:
            encircling = ()
        else:
            sieges = self._sieges_at.get(t)
            if sieges:
                encircling = tuple(
                    sorted(
                        (*encircling, *(_siege(fact) for fact in sieges.values())),
                        key=_siege_key,
                    )
                )
        ctrl = state.ctrl
        covered_end = state.covered_end
        if active:
            if boundary:
                decision = self._decider.decide(active, t, holding)
                holding, ctrl = decision.holding, decision.ctrl
                if decision.marks is not None and covered_end is not None and covered_end < t:
                    self._mark(covered_end, decision.marks, new_starts, new_outs)
            covered_end = after
        if ctrl is None and (contesting or encircling):
            ctrl = NO_CONTROL
        out: _Out | None = None
        if ctrl is not None:
            same_status = (
                previous is not None
                and contesting is state.contesting
                and encircling is state.encircling
                and previous.ctrl.controller == ctrl.controller
            )
            if same_status and previous is not None and previous.ctrl is ctrl:
                out = previous
            else:
                if same_status and previous is not None:
                    status, status_by, drivers = (
                        previous.status,
                        previous.status_by,
                        previous.drivers,
                    )
                else:
                    status, status_by, drivers = status_of(ctrl.controller, contesting, encircling)
                events = _union(ctrl.events, drivers) if drivers else ctrl.events
                out = _Out(ctrl, status, status_by, events, drivers)
        new_state = _State(holding, ctrl, covered_end, active, contesting, encircling)
        return new_state, out

    def _mark(
        self,
        since: datetime,
        marks: Ctrl,
        new_starts: list[datetime],
        new_outs: list[_Out | None],
    ) -> None:
        """Rule 4's unexplained change: the uncovered pieces since ``since`` (all in this
        window: a sweep starts at or before the end of the last covered piece) keep the
        holder, disputed, with the deciding piece's claims and reason."""
        j = len(new_starts)
        while j and new_starts[j - 1] >= since:
            j -= 1
        assert j == 0 or new_starts[j] == since or j == len(new_starts), "window too short"
        assert not new_starts or new_starts[0] <= since, "a sweep began inside uncovered time"
        # The uncovered pieces kept the holder's outcome: same controller, so same status
        # and events; only the control content changes.
        replaced: dict[int, _Out] = {}
        for n in range(j, len(new_outs)):
            old = new_outs[n]
            assert old is not None
            assert old.ctrl.controller == marks.controller
            fresh = replaced.get(id(old))
            if fresh is None:
                fresh = replaced[id(old)] = _Out(
                    marks, old.status, old.status_by, old.events, old.drivers
                )
            new_outs[n] = fresh

    # ---------------------------------------------------------------------------------------
    # Splicing the new pieces in, and the segments

    def _splice(
        self,
        k: int,
        j: int,
        new_starts: list[datetime],
        new_states: list[_State],
        new_outs: list[_Out | None],
    ) -> list[datetime | None]:
        """Replace the kept pieces ``[k, j)`` by the new ones, then the segments they touch;
        return the span of valid time whose segments were replaced, as [since, until]."""
        self._starts[k:j] = new_starts
        self._states[k:j] = new_states
        self._outs[k:j] = new_outs
        j0, j1 = k, k + len(new_starts)
        starts, outs = self._starts, self._outs
        segments, seg_starts = self._segments, self._seg_starts
        # The segment containing the piece before the window may continue into it.
        left = j0 - 1
        if left >= 0 and outs[left] is not None:
            k0 = bisect_right(seg_starts, starts[left]) - 1
            run_start: datetime | None = seg_starts[k0]
            run_out = outs[left]
        else:
            # No content before the window (once a timeline starts, every piece has some):
            # every segment is at or after it.
            k0 = 0
            run_start, run_out = None, None
        since = run_start  # None: no segment before the window
        right = j1 if j1 < len(starts) else None
        if right is not None and outs[right] is not None:
            k1 = bisect_right(seg_starts, starts[right]) - 1
            until = segments[k1].valid_to
            last = right
            stop = k1 + 1
        elif right is not None:
            # The kept piece after the window has no content (nothing before it had any):
            # the window's segments, if any, end where it starts, and the segments after it
            # are kept as they are.
            until = starts[right]
            last = j1 - 1
            stop = bisect_left(seg_starts, until)
        else:
            until = None
            last = len(starts) - 1
            stop = len(segments)
        runs: list[tuple[datetime, datetime | None, _Out]] = []
        for n in range(j0, last + 1):
            out = outs[n]
            if out is None:
                continue
            if run_out is not None and _same_out(out, run_out):
                continue
            if run_out is not None:
                assert run_start is not None
                runs.append((run_start, starts[n], run_out))
            run_start, run_out = starts[n], out
        if run_out is not None:
            assert run_start is not None
            runs.append((run_start, until, run_out))
        fresh = [_segment(start, end, out) for start, end, out in runs]
        segments[k0:stop] = fresh
        seg_starts[k0:stop] = [segment.valid_from for segment in fresh]
        return [since, until]

    def _parts(self, spans: list[list[datetime | None]]) -> tuple[Part, ...]:
        """The changed spans, merged where they touch, with the segments now in each."""
        merged: list[tuple[datetime | None, datetime | None]] = []
        for since, until in spans:
            if merged:
                last_since, last_until = merged[-1]
                if last_until is None or (since is not None and since <= last_until):
                    if last_until is not None and (until is None or until > last_until):
                        merged[-1] = (last_since, until)
                    continue
            merged.append((since, until))
        seg_starts = self._seg_starts
        parts = []
        for since, until in merged:
            lo = 0 if since is None else bisect_left(seg_starts, since)
            hi = len(seg_starts) if until is None else bisect_left(seg_starts, until)
            parts.append(Part(since, until, tuple(self._segments[lo:hi])))
        return tuple(parts)


def _contest(fact: Fact) -> Contest:
    assert fact.side is not None  # only clashes and counter-attacks naming a side are held
    return (fact.end, fact.side, fact.opponent, fact.id)


def _siege(fact: Fact) -> Siege:
    assert fact.side is not None  # only encirclements naming a side are held
    return (fact.side, fact.id)


def _segment(start: datetime, end: datetime | None, out: _Out) -> Segment:
    ctrl = out.ctrl
    return Segment(
        valid_from=start,
        valid_to=end,
        controller=ctrl.controller,
        held_since=ctrl.held_since,
        status=out.status,
        status_by=out.status_by,
        disputed=ctrl.disputed,
        confidence=ctrl.confidence,
        basis=ctrl.basis,
        claims=ctrl.claims,
        supports=ctrl.supports,
        reason=ctrl.reason,
        events=out.events,
    )


def _toggle(
    index: dict[datetime, dict[int, Fact]], at: datetime, fact: Fact, present: bool
) -> bool:
    """Add or remove ``fact`` under ``at``; whether that changed anything."""
    bucket = index.get(at)
    if present == (bucket is not None and fact.key in bucket):
        return False
    if present:
        index.setdefault(at, {})[fact.key] = fact
    else:
        assert bucket is not None
        del bucket[fact.key]
        if not bucket:
            del index[at]
    return True


def _int(value: uuid.UUID) -> int:
    return value.int


def _union(events: tuple[uuid.UUID, ...], more: tuple[uuid.UUID, ...]) -> tuple[uuid.UUID, ...]:
    """Sorted ids of both (an event can drive a status and make a claim through a link)."""
    merged = sorted((*events, *more), key=_int)
    return tuple(
        event for n, event in enumerate(merged) if n == 0 or merged[n - 1].int != event.int
    )


def _order(claim: Claim) -> tuple[str, int, str, int, str, int]:
    return claim.order


def _contest_key(contest: Contest) -> tuple[datetime, str, str, int]:
    end, side, opponent, event = contest
    return (end, side, "" if opponent is None else opponent, event.int)


def _siege_key(siege: Siege) -> tuple[str, int]:
    return (siege[0], siege[1].int)
