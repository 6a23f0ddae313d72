"""The projected timeline of a place: the shapes ``project_place`` returns (DESIGN 4).

Defined here, in the contracts, because every read of the front answers with them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, TypeAlias

import msgspec

Status: TypeAlias = Literal["controlled", "encircled", "contested", "unknown"]
Basis: TypeAlias = Literal["assessed", "claimed"]
LinkKind: TypeAlias = Literal["direct", "confirms", "denies"]


class _Output(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the projection's output structs."""


class Claim(_Output, frozen=True):
    """One claim competing in a dispute."""

    side: str | None
    """The controller the claim gives the place to; ``None`` means no controller."""
    source: str
    """The source's name as the claiming event spells it."""
    score: float
    """The claim's exact score (rule 5), rounded to the nearest double."""
    event: uuid.UUID
    """The event making the claim (for a link: the confirming or denying event)."""
    link: LinkKind
    """``direct``: the event's own claim; ``confirms``/``denies``: made by a link."""
    about: uuid.UUID | None
    """For a link: the event confirmed or denied."""


class Support(_Output, frozen=True, kw_only=True):
    """A side's support in a dispute: noisy-OR over its sources' best claims."""

    side: str | None
    support: float
    """The exact support rounded to the nearest double."""
    sources: int
    """Independent sources counted for the side (each once, with its best claim)."""
    claims: int = 0
    """In-force claims for the side among those that decided the segment (the claims
    covering it and, for the holder, its standing evidence); only the counted ones are listed."""


class Segment(_Output, frozen=True, kw_only=True):
    """The place's state over a half-open valid interval ``[valid_from, valid_to)``."""

    valid_from: datetime
    valid_to: datetime | None
    """``None``: the state persists, open-ended."""
    controller: str | None
    held_since: datetime | None = None
    """When control last changed hands to ``controller``: the start of the piece it won
    (``None`` while no side controls)."""
    status: Status
    status_by: str | None
    """The side encircling or contesting the place."""
    disputed: bool
    confidence: int
    """The controller's support x 100, rounded half up (0-100)."""
    basis: Basis
    claims: tuple[Claim, ...]
    """When disputed: every competing claim. Otherwise empty."""
    supports: tuple[Support, ...]
    """When disputed: each competing side's support. Otherwise empty."""
    reason: str | None
    """When disputed: why the controller won. Otherwise ``None``."""
    events: tuple[uuid.UUID, ...]
    """Sorted ids of the events supporting the controller and the status."""


class Timeline(_Output, frozen=True):
    """The projection of one place under one policy."""

    policy: str
    policy_version: int
    segments: tuple[Segment, ...]
    """Ordered by valid time, contiguous from the place's first claim."""
