"""Rules 1 and 2: what the fold reads of each event, and the claims events make.

A :class:`Fact` is the part of an event the projection reads, computed once (the event's
quote, notes and place are not kept: a fold holds many thousands of them). A :class:`Spec`
says that an event makes a claim over another event's valid interval (its own, for a direct
claim); a :class:`Claim` is that claim resolved: the side it gives the place to and its
score. Resolving needs, for a capture that does not name its ``opponent``, the controller
just before the claim's interval (the side it takes the place from): the sweep supplies it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

import msgspec

from contracts.events import Event, Hedge, Occurred, Reliability, event_type
from contracts.timeline import Claim as ListedClaim
from contracts.timeline import LinkKind
from service.domain.policy import NEUTRAL
from service.domain.projection.claims import Claim, Side, side_key
from service.domain.projection.scores import Scorer
from service.domain.records import source_key
from service.domain.time import valid_interval

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
#: Relations by which a source takes its own earlier event out of force (rule 1).
WITHDRAWS: Final = frozenset({"retracts", "corrects", "supersedes"})
#: Relations by which an event makes a claim about another (rule 2), as the claim's link.
SPEAKS_OF: Final[dict[str, LinkKind]] = {"confirms": "confirms", "denies": "denies"}


def changes_nothing(event: Event) -> bool:
    """Whether adding ``event`` to any set of events leaves the timeline exactly as it was.

    True for an informational event that links to nothing: it makes no claim, drives no
    status, and is never among a segment's events. (A later event's link to it claims
    nothing either.)
    """
    return event_type(event) in INFORMATIONAL and not event.relates_to


class _SourceView(msgspec.Struct, frozen=True, gc=False):
    name: str
    reliability: Reliability = "F"
    alignment: str = "neutral"


class _LinkView(msgspec.Struct, frozen=True, gc=False):
    event: uuid.UUID
    relation: str


class _PayloadView(msgspec.Struct, frozen=True, gc=False):
    """The fields of a stored payload the fold reads (the rest is skipped unread); defaults
    as the contract's (``contracts.events``)."""

    type: str
    occurred: Occurred
    source: _SourceView
    id: uuid.UUID | None = None
    side: str | None = None
    opponent: str | None = None
    credibility: int = 6
    hedge: Hedge = "reported"
    relates_to: tuple[_LinkView, ...] = ()


_payload_view: Final = msgspec.json.Decoder(_PayloadView)


class Fact(msgspec.Struct, frozen=True, gc=False):
    """What the projection reads of one event.

    A frozen msgspec Struct, not tracked by the garbage collector: a fold holds one per
    event, and nothing it points to can point back.
    """

    id: uuid.UUID
    key: int
    """``id.int``: what the fold indexes facts by (a UUID hashes in Python, an int in C)."""
    kind: str
    start: datetime
    end: datetime
    source: str
    """The source's key (:func:`~service.domain.records.source_key`): who counts as the same."""
    source_name: str
    """The source's name as the event spells it (what a listing shows)."""
    reliability: Reliability
    credibility: int
    hedge: Hedge
    alignment: str
    side: Side
    opponent: Side
    links: tuple[tuple[int, str], ...]
    """``relates_to`` as (event key, relation) pairs."""

    @staticmethod
    def of(event: Event) -> Fact:
        """The fact of a stored event (it must carry its id)."""
        event_id = event.id
        if event_id is None:
            raise ValueError("project_place needs stored events: an event has no id")
        start, end = valid_interval(event.occurred)
        source = event.source
        return Fact(
            event_id,
            event_id.int,
            event_type(event),
            start,
            end,
            source_key(source.name),
            source.name,
            source.reliability,
            event.credibility,
            event.hedge,
            source.alignment,
            event.side,
            event.opponent,
            tuple((link.event.int, link.relation) for link in event.relates_to)
            if event.relates_to
            else (),
        )

    @staticmethod
    def from_payload(payload: bytes | str) -> Fact:
        """The fact of a payload as the log stores it (validated at append, so read as is):
        about a fifth of the cost of decoding the whole event first."""
        view = _payload_view.decode(payload)
        event_id = view.id
        if event_id is None:
            raise ValueError("project_place needs stored events: a payload has no id")
        start, end = valid_interval(view.occurred)
        source = view.source
        return Fact(
            event_id,
            event_id.int,
            view.type,
            start,
            end,
            source_key(source.name),
            source.name,
            source.reliability,
            view.credibility,
            view.hedge,
            source.alignment,
            view.side,
            view.opponent,
            tuple((link.event.int, link.relation) for link in view.relates_to)
            if view.relates_to
            else (),
        )


class Assertion(msgspec.Struct, frozen=True, gc=False):
    """The control claim an event makes of itself, before any timeline is known (rule 2)."""

    favours: Side
    """The controller the claim gives the place to."""
    disfavours: Side
    """The side it takes the place from, when named."""
    open: bool
    """True when that side is not named: it is the controller just before the claim."""
    changes: bool
    """True when the claim explains a change of controller (rule 4)."""


def assertion_of(fact: Fact) -> Assertion | None:
    """Rule 2: the control claim an event makes, if any."""
    if fact.kind in GIVES_TO_SIDE:
        named = fact.opponent if fact.opponent != fact.side else None
        return Assertion(fact.side, named, named is None, fact.kind in CHANGES_CONTROL)
    if fact.kind in GIVES_TO_OPPONENT:
        return Assertion(fact.opponent, fact.side, False, True)
    return None


class Spec:
    """``maker`` makes a ``link`` claim over ``target``'s interval (``direct``: its own).

    Resolution is memoised by the side the claim would displace, which is all it depends on
    beyond the two events.
    """

    __slots__ = ("_resolved", "assertion", "key", "link", "maker", "target")

    def __init__(self, maker: Fact, target: Fact, link: LinkKind, assertion: Assertion) -> None:
        self.maker = maker
        self.target = target
        self.link: LinkKind = link
        self.assertion = assertion
        self.key = (maker.key, target.key, link)
        self._resolved: dict[Side, Claim] = {}

    @property
    def start(self) -> datetime:
        return self.target.start

    @property
    def end(self) -> datetime:
        return self.target.end

    def resolve(self, scorer: Scorer, before: Side) -> Claim:
        """The claim, given the controller just before its interval (``before``)."""
        assertion = self.assertion
        if not assertion.open:
            before = None  # it does not depend on it
        claim = self._resolved.get(before)
        if claim is None:
            claim = self._resolved[before] = self._make(scorer, before)
        return claim

    def _make(self, scorer: Scorer, before: Side) -> Claim:
        assertion, maker, target = self.assertion, self.maker, self.target
        against = assertion.disfavours
        if assertion.open:
            against = before if before != assertion.favours else None
        if self.link == "denies":
            # A denial claims the place for whom the denied event would displace.
            side, disfavours, changes = against, assertion.favours, False
        else:
            side, disfavours, changes = assertion.favours, against, assertion.changes
        score = scorer.score(
            maker.reliability, maker.credibility, maker.hedge, maker.alignment, side, disfavours
        )
        about = None if self.link == "direct" else target.id
        return Claim(
            target.start,
            target.end,
            side,
            maker.source,
            score,
            maker.id,
            self.link,
            about,
            changes,
            maker.alignment != NEUTRAL and maker.alignment == side,
            (
                side_key(side),
                -score,
                maker.source,
                maker.key,
                self.link,
                -1 if about is None else target.key,
            ),
            ListedClaim(
                side=side,
                source=maker.source_name,
                score=score / scorer.denominator,
                event=maker.id,
                link=self.link,
                about=about,
            ),
        )
