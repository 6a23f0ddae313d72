"""Rule 5 in exact integer arithmetic: scores, each source's best claim, support, confidence.

Every weight of a policy is a fraction with a small denominator, so every score is an integer
numerator over one common denominator ``D`` (2,000 for ``credibility-v2``). A side's support
over ``k`` counted claims is the noisy-OR ``1 - prod(1 - s_i)``; it is kept as the pair
``(miss, k)`` with ``miss = prod(D - n_i)``, so that support is ``1 - miss / D**k``. Two
supports compare by cross-multiplying with powers of ``D``: Python integers are exact, so the
same claims give the same answer on every machine and in every order (rule 6).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar, Final

from contracts.events import Hedge, Reliability
from service.domain.policy import NEUTRAL, Policy
from service.domain.projection.claims import Claim, Side


def common_denominator(policy: Policy) -> int:
    """The smallest ``D`` such that every score of ``policy`` is an integer over ``D``."""

    def lcm_of(values: Iterable[Fraction]) -> int:
        return math.lcm(*(value.denominator for value in values))

    return (
        lcm_of(policy.reliability.values())
        * lcm_of(policy.credibility.values())
        * lcm_of(policy.hedge.values())
        * lcm_of((policy.self_serving, policy.against_interest, policy.unaligned))
        * policy.cap.denominator
    )


class Scorer:
    """Rule 5's score of a claim as an integer numerator over :attr:`denominator`, cached by
    the few inputs it depends on. One per policy (:meth:`of`), shared by every fold."""

    _shared: ClassVar[dict[tuple[str, int], Scorer]] = {}

    @classmethod
    def of(cls, policy: Policy) -> Scorer:
        """The scorer of ``policy`` (a policy is immutable: its scores never change)."""
        key = (policy.name, policy.version)
        scorer = cls._shared.get(key)
        if scorer is None or scorer.policy is not policy:
            scorer = cls._shared[key] = cls(policy)
        return scorer

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.denominator = common_denominator(policy)
        self._cache: dict[tuple[str, int, str, str, bool, bool], int] = {}

    def score(
        self,
        reliability: Reliability,
        credibility: int,
        hedge: Hedge,
        alignment: str,
        favours: Side,
        disfavours: Side,
    ) -> int:
        """The score's numerator: reliability x credibility x hedge x alignment, capped."""
        aligned = alignment != NEUTRAL
        serving = aligned and favours is not None and alignment == favours
        against = aligned and not serving and disfavours is not None and alignment == disfavours
        key = (reliability, credibility, hedge, alignment if aligned else NEUTRAL, serving, against)
        cached = self._cache.get(key)
        if cached is None:
            exact = self.policy.score(
                reliability=reliability,
                credibility=credibility,
                hedge=hedge,
                alignment=alignment,
                favours=favours,
                disfavours=disfavours,
            )
            scaled = exact * self.denominator
            assert scaled.denominator == 1, "the common denominator must divide every score"
            cached = self._cache[key] = int(scaled)
        return cached


@dataclass(frozen=True, slots=True)
class Support:
    """A side's support: ``1 - miss / D**count``, from its counted claims."""

    miss: int
    count: int

    @staticmethod
    def of(scores: Iterable[int], denominator: int) -> Support:
        """The noisy-OR of some score numerators, over sources in the order given."""
        miss, count = 1, 0
        for score in scores:
            miss *= denominator - score
            count += 1
        return Support(miss, count)


class Arithmetic:
    """Comparisons and roundings of supports over one denominator ``D``."""

    def __init__(self, denominator: int) -> None:
        self.denominator = denominator
        self._powers = [1]

    def power(self, k: int) -> int:
        """``D ** k``, memoised."""
        powers = self._powers
        while len(powers) <= k:
            powers.append(powers[-1] * self.denominator)
        return powers[k]

    def compare(self, a: Support, b: Support) -> int:
        """-1, 0 or 1 as support ``a`` is lower than, equal to or higher than ``b``."""
        # 1 - ma/D^ka  vs  1 - mb/D^kb  <=>  mb * D^ka  vs  ma * D^kb
        left = b.miss * self.power(a.count)
        right = a.miss * self.power(b.count)
        return (left > right) - (left < right)

    def exact(self, support: Support) -> Fraction:
        """The support as an exact fraction."""
        whole = self.power(support.count)
        return Fraction(whole - support.miss, whole)

    def as_float(self, support: Support) -> float:
        """The exact support rounded once to the nearest double."""
        whole = self.power(support.count)
        return (whole - support.miss) / whole

    def percent(self, support: Support) -> int:
        """Support x 100, rounded half up (rule 5's ``confidence``)."""
        whole = self.power(support.count)
        return (200 * (whole - support.miss) + whole) // (2 * whole)

    def percent_text(self, support: Support) -> str:
        """Support as a percentage with two decimals, rounded half up: ``38.40%``."""
        whole = self.power(support.count)
        hundredths = (20_000 * (whole - support.miss) + whole) // (2 * whole)
        return f"{hundredths // 100}.{hundredths % 100:02d}%"


class Evidence:
    """Counted claims for one side: each source once, with its best claim (rule 5).

    Immutable once made: a new claim makes a new :class:`Evidence`. Used as a side's tally
    within a piece and as the controller's standing evidence (rule 4), carried from piece to
    piece.
    """

    __slots__ = ("_assessed", "_events", "claims", "support")

    def __init__(self, claims: Mapping[str, Claim], support: Support) -> None:
        self.claims = claims
        """The counted claim of each source (by source key)."""
        self.support = support
        self._events: tuple[uuid.UUID, ...] | None = None
        self._assessed: bool | None = None

    @staticmethod
    def of(claims: Mapping[str, Claim], denominator: int) -> Evidence:
        """The evidence of these counted claims (support over sources in sorted order)."""
        ordered = sorted(claims)
        return Evidence(
            claims, Support.of((claims[source].score for source in ordered), denominator)
        )

    def grown(self, claims: Mapping[str, Claim], denominator: int) -> Evidence:
        """This evidence with ``claims`` added (each source keeps its better claim); itself
        when none of them is better than what it holds."""
        better_ones = [
            (source, claim)
            for source, claim in claims.items()
            if better(claim, self.claims.get(source))
        ]
        if not better_ones:
            return self
        merged = dict(self.claims)
        miss, count = self.support.miss, self.support.count
        for source, claim in better_ones:
            old = merged.get(source)
            if old is None:
                count += 1
                miss *= denominator - claim.score
            elif old.score != claim.score:
                # Exact: the old factor divides the product (and is not 0, being below the
                # new score, which is at most the denominator).
                miss = miss // (denominator - old.score) * (denominator - claim.score)
            merged[source] = claim
        return Evidence(merged, Support(miss, count))

    @property
    def events(self) -> tuple[uuid.UUID, ...]:
        """The ids of the events making the counted claims, sorted."""
        if self._events is None:
            # One counted claim per source, and one source per event: no duplicates.
            self._events = tuple(
                sorted((claim.event for claim in self.claims.values()), key=_uuid_int)
            )
        return self._events

    @property
    def assessed(self) -> bool:
        """Rule 7: at least one counted claim is not self-serving."""
        if self._assessed is None:
            self._assessed = any(not claim.self_serving for claim in self.claims.values())
        return self._assessed

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, Evidence) and dict(self.claims) == dict(other.claims)
        )

    def __hash__(self) -> int:
        return hash(frozenset(self.claims.items()))

    def __repr__(self) -> str:
        return f"Evidence({sorted(self.claims)})"


EMPTY: Final = Evidence({}, Support(1, 0))
"""No counted claim: support 0."""


def _uuid_int(value: uuid.UUID) -> int:
    return value.int


def better(candidate: Claim, held: Claim | None) -> bool:
    """Whether ``candidate`` is a source's better claim than ``held`` (higher score, then the
    first in listing order): the choice is the same whatever order claims are seen in."""
    if held is None:
        return True
    if candidate.score != held.score:
        return candidate.score > held.score
    return candidate.order < held.order
