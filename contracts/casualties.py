"""Answers about casualty figures: every claim side by side, grouped by incident.

A casualty claim is one event's ``casualties`` as its source gave them. Reports linked to each
other (``relates_to``: a confirmation, a correction ...) are one **incident**; an unlinked
report is an incident of its own. An incident lists every claim with its source, and the
spread of the best figures of the claims in force (the lowest and the highest): figures are
never averaged, and a claim breaking ``low <= killed <= high`` is listed as given, with the
violation named.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from contracts.front import Frame, PlaceInfo


class _Output(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every answer struct."""


class ClaimLink(_Output, frozen=True):
    """A link of a claim's event to another event of its incident."""

    event: uuid.UUID
    relation: str


class CasualtyClaim(_Output, frozen=True):
    """One source's casualty figures for one event, as given."""

    event: uuid.UUID
    position: int
    place: str
    type: str
    """The event's type (``casualties``, or a ``clash`` ... that carries figures)."""
    source: str
    reliability: str
    published_at: str | None
    """When the source published it, as the event says (never a sentinel: see docs/interop.md)."""
    side: str | None
    """The event's side (who acted)."""
    casualties_side: str | None
    """Whose casualties, when the source says (``casualties.side``)."""
    killed: int | None
    """The source's best figure."""
    low: int | None
    high: int | None
    wounded: int | None
    occurred_start: str
    occurred_end: str | None
    precision: str
    in_force: bool
    """False when its own source retracted, corrected or superseded it (DESIGN 4, rule 1)."""
    relates_to: list[ClaimLink]
    """Its links to other events of the incident."""
    violations: list[str]
    """The figures' broken bounds (``casualties.low exceeds casualties.killed`` ...)."""


class Spread(_Output, frozen=True):
    """The range of the best figures the incident's claims in force give: never an average."""

    min_killed: int | None
    max_killed: int | None
    claims: int
    """Claims in force with a best figure."""
    sources: int
    """Distinct sources among them."""


class Incident(_Output, frozen=True):
    """The claims about one incident: the reports linked to each other."""

    incident: uuid.UUID
    """The id of the incident's first event (the report the others link back to)."""
    first: int
    """That event's position: incidents are listed in its order."""
    place: str
    claims: list[CasualtyClaim]
    spread: Spread
    violations: int
    """How many of its claims break ``low <= killed <= high``."""


class PlaceCasualties(_Output, frozen=True):
    """A page of a place's incidents, in the order of their first event."""

    place: PlaceInfo
    frame: Frame
    items: list[Incident]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; null on the last page."""
    next: str | None
    """The relative URL of the next page (this query, ``cursor`` set); null on the last page."""


class CasualtiesInRange(_Output, frozen=True):
    """A page of the incidents whose claims' valid time meets a range, place by place."""

    frame: Frame
    from_: datetime | None = msgspec.field(name="from")
    to: datetime | None
    items: list[Incident]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; null on the last page."""
    next: str | None
    """The relative URL of the next page (this query, ``cursor`` set); null on the last page."""
