"""Projection policies: every weight that turns a report into a score, in one place.

A policy has a name and a version, and both appear in every answer built with it
(DESIGN section 4). A new weighting is a new policy (or a new version), never an edit of
the served one: an old answer must stay reproducible. Weights are exact
:class:`~fractions.Fraction` values so that scores and supports never depend on floating
point (rule 6).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Final

from contracts.events import Credibility, Hedge, Reliability

NEUTRAL: Final = "neutral"
"""The alignment of a source that speaks for no side; it is never self-serving."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A named, versioned set of weights for scoring claims (DESIGN section 4, rule 5)."""

    name: str
    version: int
    reliability: Mapping[Reliability, Fraction] = field(hash=False)
    """Admiralty source reliability A..F."""
    credibility: Mapping[Credibility, Fraction] = field(hash=False)
    """Admiralty information credibility 1..6."""
    hedge: Mapping[Hedge, Fraction] = field(hash=False)
    """The source's own wording."""
    self_serving: Fraction
    """Factor when the source is aligned with the side the claim favours."""
    against_interest: Fraction
    """Factor when the source is aligned with the side the claim disfavours."""
    unaligned: Fraction
    """Factor otherwise (neutral sources, or a third side)."""
    cap: Fraction
    """A score never exceeds this."""

    def alignment_factor(
        self, alignment: str, favours: str | None, disfavours: str | None
    ) -> Fraction:
        """The alignment weight of a source for a claim giving the place to ``favours``."""
        if alignment != NEUTRAL:
            if favours is not None and alignment == favours:
                return self.self_serving
            if disfavours is not None and alignment == disfavours:
                return self.against_interest
        return self.unaligned

    def score(
        self,
        *,
        reliability: Reliability,
        credibility: Credibility,
        hedge: Hedge,
        alignment: str,
        favours: str | None,
        disfavours: str | None,
    ) -> Fraction:
        """The product of the weights, capped at :attr:`cap`."""
        product = (
            self.reliability[reliability]
            * self.credibility[credibility]
            * self.hedge[hedge]
            * self.alignment_factor(alignment, favours, disfavours)
        )
        return min(product, self.cap)


CREDIBILITY_V2: Final = Policy(
    name="credibility-v2",
    version=1,
    reliability=MappingProxyType(
        {
            "A": Fraction(1),
            "B": Fraction(4, 5),
            "C": Fraction(3, 5),
            "D": Fraction(2, 5),
            "E": Fraction(1, 5),
            "F": Fraction(1, 2),
        }
    ),
    credibility=MappingProxyType(
        {
            1: Fraction(1),
            2: Fraction(4, 5),
            3: Fraction(3, 5),
            4: Fraction(2, 5),
            5: Fraction(1, 5),
            6: Fraction(1, 2),
        }
    ),
    hedge=MappingProxyType(
        {
            "confirmed": Fraction(1),
            "reported": Fraction(4, 5),
            "claimed": Fraction(3, 5),
            "alleged": Fraction(1, 2),
            "unconfirmed": Fraction(2, 5),
        }
    ),
    self_serving=Fraction(1, 2),
    against_interest=Fraction(3, 2),
    unaligned=Fraction(1),
    cap=Fraction(1),
)
"""Policy ``credibility-v2``, version 1: the weights of DESIGN section 4, rule 5 (those of the
retired ``credibility-v1``; what changed is how pieces of valid time are decided)."""

SERVED: Final = CREDIBILITY_V2
"""The policy the service projects with: the one every stored row and every answer names."""

RETIRED: Final = frozenset({"credibility-v1"})
"""Names of the policies this code replaced (every version of each): their rows are older
than the served policy's."""


def superseded(name: str, version: int, served: Policy = SERVED) -> bool:
    """Whether rows of policy ``name`` version ``version`` are known to be older than
    ``served``'s: a retired policy, or an earlier version of the served one. Rows of any
    other policy may be newer (made by a later version of the service, as during a rolling
    deploy): a process must not rebuild them back to its own policy by itself."""
    return name in RETIRED or (name == served.name and version < served.version)
