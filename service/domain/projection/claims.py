"""A claim and the sides it names: what a source says about who holds a place over an
interval, scored. The facts (:mod:`.facts`) make claims and the scores (:mod:`.scores`) weigh
them; both read this module, which reads neither."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeAlias

import msgspec

from contracts.timeline import Claim as ListedClaim
from contracts.timeline import LinkKind

Side: TypeAlias = str | None
"""A side's slug, or ``None`` for "no controller"."""


def side_key(side: Side) -> str:
    """A side as a sort key: "no controller" sorts first."""
    return "" if side is None else side


class Claim(msgspec.Struct, frozen=True, gc=False):
    """A resolved claim: over ``[start, end)``, ``source`` gives the place to ``side``."""

    start: datetime
    end: datetime
    side: Side
    source: str
    score: int
    """The score's numerator over the policy's common denominator."""
    event: uuid.UUID
    """The event making the claim (for a link: the confirming or denying event)."""
    link: LinkKind
    about: uuid.UUID | None
    """For a link: the event confirmed or denied."""
    changes: bool
    """The claim explains a change of controller (captures, withdrawals and the like, and
    confirmations of them)."""
    self_serving: bool
    """The source is aligned with the side the claim gives the place to (rules 5 and 7)."""
    order: tuple[str, int, str, int, str, int]
    """Listing order: side, best score first, source, event, link, the event it is about."""
    listed: ListedClaim
    """The claim as a listing shows it."""
