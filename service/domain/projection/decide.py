"""Rules 4, 5 and 7 for one piece of valid time: what decides it, who wins, what it lists.

A piece is a stretch of valid time between two consecutive claim boundaries. The claims
covering it are decided together with the incumbent's **standing evidence** (its counted
claims, carried forward while it holds the place), unless one of the covering claims gives
the place to another side and explains a change (then the covering claims alone decide: a
capture is consistent with the old holder having held the place until then). Nothing else
decides a piece: disputes never chain.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import cmp_to_key
from typing import Final, Literal

import msgspec

from contracts.timeline import Basis
from contracts.timeline import Claim as ListedClaim
from contracts.timeline import Support as ListedSupport
from service.domain.projection.claims import Claim, Side, side_key
from service.domain.projection.scores import EMPTY, Arithmetic, Evidence, better
from service.domain.time import utc_text

Mode = Literal["first", "vacant", "change", "standing"]
"""What decides a piece: the covering claims alone (at the place's first claimed time; after a
time with no controller; when a covering claim explains a change), or the covering claims
with the incumbent's standing evidence."""


class Holding(msgspec.Struct, frozen=True, gc=False):
    """The controller after a decided piece, and what it holds the place on."""

    controller: Side
    evidence: Evidence
    """Its standing evidence: its counted claims, grown by corroboration while it holds."""
    held_since: datetime | None
    """When control last changed hands to it (``None`` for no controller)."""
    run_start: datetime
    """When its run of pieces began (as ``held_since``, and also for no controller)."""
    confidence: int
    """Its standing evidence's support x 100, rounded half up (0 for no evidence)."""
    basis: Basis
    """Rule 7 over its standing evidence."""


class Ctrl(msgspec.Struct, frozen=True, gc=False):
    """The control part of a segment: equal content makes one segment of adjacent pieces."""

    controller: Side
    held_since: datetime | None
    disputed: bool
    confidence: int
    basis: Basis
    claims: tuple[ListedClaim, ...]
    supports: tuple[ListedSupport, ...]
    reason: str | None
    events: tuple[uuid.UUID, ...]


NO_CONTROL: Final = Ctrl(None, None, False, 0, "claimed", (), (), None, ())
"""Before any control claim, once a status report opened the timeline: no controller."""


class Decision(msgspec.Struct, frozen=True, gc=False):
    """A decided piece: the holding after it, its content, and the content of the uncovered
    time before it when the piece marks an unexplained change (rule 4)."""

    holding: Holding
    ctrl: Ctrl
    marks: Ctrl | None


def spent(claim: Claim, moment: datetime, holding: Holding) -> bool:
    """A change happens once: whether another side than ``claim``'s has already won a piece
    inside its interval, before ``moment`` (the claim's pieces are contiguous, so that is:
    the controller now is another side, or its run began after the claim did)."""
    return claim.start < moment and (
        holding.controller != claim.side or holding.run_start > claim.start
    )


def mode_of(claims: Sequence[Claim], moment: datetime, holding: Holding | None) -> Mode:
    """Rule 4: whether the covering claims decide alone, and why."""
    if holding is None:
        return "first"
    held = holding.controller
    if held is None:
        if any(claim.side is not None for claim in claims):
            return "vacant"
        return "standing"
    for claim in claims:
        if claim.changes and claim.side != held and not spent(claim, moment, holding):
            return "change"
    return "standing"


class Decider:
    """Decides pieces under one policy's arithmetic."""

    def __init__(self, arithmetic: Arithmetic) -> None:
        self.arithmetic = arithmetic
        self.denominator = arithmetic.denominator
        self._reasons: dict[object, str] = {}
        """Reasons by what they say (a refold decides the same pieces again)."""

    def decide(
        self, claims: Sequence[Claim], moment: datetime, holding: Holding | None
    ) -> Decision:
        """Decide the piece starting at ``moment`` that ``claims`` (non-empty) cover."""
        mode = mode_of(claims, moment, holding)
        tallies: dict[Side, dict[str, Claim]] = {}
        counts: dict[Side, int] = {}
        for claim in claims:
            tally = tallies.setdefault(claim.side, {})
            if better(claim, tally.get(claim.source)):
                tally[claim.source] = claim
            counts[claim.side] = counts.get(claim.side, 0) + 1
        evidence: dict[Side, Evidence] = {}
        if mode == "standing":
            assert holding is not None
            held = holding.controller
            standing = holding.evidence
            covering = tallies.pop(held, {})
            evidence[held] = standing.grown(covering, self.denominator)
            tallies[held] = dict(evidence[held].claims)
            # Standing claims that no longer cover the piece count as claims that decided it.
            counts[held] = counts.get(held, 0) + sum(
                1 for claim in standing.claims.values() if claim.end <= moment
            )
        for side, tally in tallies.items():
            if side not in evidence:
                evidence[side] = Evidence.of(tally, self.denominator)
        arithmetic = self.arithmetic
        ranked = sorted(evidence, key=side_key)
        top = ranked[0]
        tied = False
        # The holder's grown standing evidence, when it won a piece the covering claims alone
        # decided and that evidence's support differs from theirs (the reason then says so).
        kept_on: Evidence | None = None
        for side in ranked[1:]:
            order = arithmetic.compare(evidence[side].support, evidence[top].support)
            if order > 0:
                top, tied = side, False
            elif order == 0:
                tied = True
        if tied:
            after = (
                holding if holding is not None else Holding(None, EMPTY, None, moment, 0, "claimed")
            )
        else:
            won = evidence[top]
            confidence = arithmetic.percent(won.support)
            basis: Basis = "assessed" if won.assessed else "claimed"
            if holding is not None and top == holding.controller:
                if mode != "standing":
                    # The covering claims alone decided who wins, and the holder won: it
                    # keeps the place on its standing evidence grown by its claims here, and
                    # its confidence and basis are that evidence's, as in a standing piece.
                    # (Its support among the covering claims alone would make an agreeing
                    # report lower its confidence: a tie keeps the standing evidence's
                    # confidence, and a win by the narrowest margin would drop it to the
                    # covering claims' support.)
                    standing_evidence = holding.evidence.grown(won.claims, self.denominator)
                    if arithmetic.compare(standing_evidence.support, won.support) != 0:
                        kept_on = standing_evidence
                    confidence = arithmetic.percent(standing_evidence.support)
                    basis = "assessed" if standing_evidence.assessed else "claimed"
                else:
                    standing_evidence = won
                after = Holding(
                    top,
                    standing_evidence,
                    holding.held_since,
                    holding.run_start,
                    confidence,
                    basis,
                )
            else:
                held_since = moment if top is not None else None
                after = Holding(top, won, held_since, moment, confidence, basis)
        if len(evidence) < 2:
            ctrl = Ctrl(
                after.controller,
                after.held_since,
                False,
                after.confidence,
                after.basis,
                (),
                (),
                None,
                after.evidence.events,
            )
            return Decision(after, ctrl, None)
        listed = tuple(
            claim.listed
            for claim in sorted(
                (claim for tally in tallies.values() for claim in tally.values()),
                key=_order,
            )
        )
        supports = tuple(
            ListedSupport(
                side=side,
                support=arithmetic.as_float(evidence[side].support),
                sources=len(evidence[side].claims),
                claims=counts[side],
            )
            for side in ranked
        )
        reason = self._reason(mode, evidence, tied, after.controller, holding, kept_on)
        ctrl = Ctrl(
            after.controller,
            after.held_since,
            True,
            after.confidence,
            after.basis,
            listed,
            supports,
            reason,
            after.evidence.events,
        )
        marks = None
        if mode == "standing":
            # An unexplained change: the time since the last covered piece keeps the holder
            # and lists the same claims (rule 4).
            assert holding is not None
            marked_reason = reason
            if after.controller != holding.controller:
                marked_reason = (
                    f"{reason} Until {utc_text(moment)}, {_label(holding.controller)} is kept "
                    "as controller: nothing reports the change before then."
                )
            marks = Ctrl(
                holding.controller,
                holding.held_since,
                True,
                holding.confidence,
                holding.basis,
                listed,
                supports,
                marked_reason,
                holding.evidence.events,
            )
        return Decision(after, ctrl, marks)

    def _reason(
        self,
        mode: Mode,
        evidence: dict[Side, Evidence],
        tied: bool,
        winner: Side,
        holding: Holding | None,
        kept_on: Evidence | None,
    ) -> str:
        key = (
            mode,
            tied,
            winner,
            holding is None,
            None if holding is None else holding.controller,
            tuple(
                (side_key(side), found.support.miss, found.support.count, len(found.claims))
                for side, found in evidence.items()
            ),
            None
            if kept_on is None
            else (kept_on.support.miss, kept_on.support.count, len(kept_on.claims)),
        )
        reason = self._reasons.get(key)
        if reason is None:
            if len(self._reasons) > 50_000:
                self._reasons.clear()
            reason = self._reasons[key] = self._explain(
                mode, evidence, tied, winner, holding, kept_on
            )
        return reason

    def _explain(
        self,
        mode: Mode,
        evidence: dict[Side, Evidence],
        tied: bool,
        winner: Side,
        holding: Holding | None,
        kept_on: Evidence | None,
    ) -> str:
        arithmetic = self.arithmetic
        cause = _CAUSES[mode]

        def higher_first(a: tuple[Side, Evidence], b: tuple[Side, Evidence]) -> int:
            order = arithmetic.compare(b[1].support, a[1].support)
            return order or (side_key(a[0]) > side_key(b[0])) - (side_key(a[0]) < side_key(b[0]))

        ranked = sorted(evidence.items(), key=cmp_to_key(higher_first))
        listing = ", ".join(
            f"{_label(side)} {arithmetic.percent_text(found.support)} "
            f"({len(found.claims)} source{'' if len(found.claims) == 1 else 's'})"
            for side, found in ranked
        )
        if not tied:
            won = f"{cause} {_label(winner)} has the higher support: {listing}."
            if kept_on is not None:
                sources = len(kept_on.claims)
                won += (
                    f" {_label(winner)} keeps the place on its standing evidence grown by its "
                    f"claims here: {arithmetic.percent_text(kept_on.support)} "
                    f"({sources} source{'' if sources == 1 else 's'})."
                )
            return won
        top = ranked[0][1].support
        names = " and ".join(
            _label(side) for side, found in ranked if arithmetic.compare(found.support, top) == 0
        )
        if holding is None:
            kept = "there was no controller before, so none is named"
        else:
            kept = f"the previous controller, {_label(holding.controller)}, is kept"
        return (
            f"{cause} Tie at {arithmetic.percent_text(top)} between {names}; {kept}. "
            f"Supports: {listing}."
        )


_CAUSES: Final[dict[Mode, str]] = {
    "first": "Claims for different controllers cover the first time anyone claimed the place.",
    "vacant": "Claims for different controllers cover a time when no side held the place.",
    "change": ("A report of a change of hands covers this time, so the claims covering it decide."),
    "standing": (
        "No report for another side explains a change of hands, so the claims covering this "
        "time are weighed with the standing evidence of the side that held the place."
    ),
}


def _order(claim: Claim) -> tuple[str, int, str, int, str, int]:
    return claim.order


def _label(side: Side) -> str:
    return "no controller" if side is None else side
