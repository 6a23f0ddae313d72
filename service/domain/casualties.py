"""Casualty claims side by side: a place's reports grouped by incident, with their spread.

Pure: given the stored events that carry figures or links (each with its position), it groups
the figures into incidents (events linked by ``relates_to``, any relation, are one incident)
and says which claims are in force (rule 1 of DESIGN 4: an event is out of force once its own
source retracts, corrects or supersedes it; a withdrawal that is itself withdrawn restores it).
Figures are listed as their sources gave them: the spread is the lowest and the highest best
figure, never an average, and a broken ``low <= killed <= high`` is named, not repaired.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from contracts.casualties import CasualtyClaim, ClaimLink, Incident, Spread
from contracts.events import Event, event_type
from service.domain.records import casualty_flags, source_key
from service.domain.registry import EMPTY, SideRegistry

#: The relations by which a source withdraws its own event (DESIGN 3).
WITHDRAWALS: Final = frozenset({"retracts", "corrects", "supersedes"})


@dataclass(frozen=True, slots=True)
class StoredReport:
    """An event as the log holds it: its position, and the event."""

    position: int
    event: Event

    @property
    def id(self) -> uuid.UUID:
        """The event's id (stored events always have one)."""
        assert self.event.id is not None
        return self.event.id


def in_force(reports: Iterable[StoredReport]) -> dict[uuid.UUID, bool]:
    """Whether each report is in force, by id, from the withdrawals among ``reports``.

    Links point to earlier events, so deciding from the latest report back decides every
    withdrawal before what it withdraws."""
    ordered = sorted(reports, key=lambda r: r.position, reverse=True)
    withdrawn_by: dict[uuid.UUID, list[uuid.UUID]] = {}
    for report in ordered:
        for link in report.event.relates_to:
            if link.relation in WITHDRAWALS:
                withdrawn_by.setdefault(link.event, []).append(report.id)
    alive: dict[uuid.UUID, bool] = {}
    for report in ordered:
        alive[report.id] = not any(alive.get(w, False) for w in withdrawn_by.get(report.id, ()))
    return alive


def _components(reports: Sequence[StoredReport]) -> dict[uuid.UUID, uuid.UUID]:
    """Each report's incident: the id of the earliest report it is linked with (any
    relation, either direction, through any report of ``reports``)."""
    parent = {r.id: r.id for r in reports}
    position = {r.id: r.position for r in reports}

    def root(key: uuid.UUID) -> uuid.UUID:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for report in reports:
        for link in report.event.relates_to:
            if link.event not in parent:
                continue
            a, b = root(report.id), root(link.event)
            if a != b:
                first, second = (a, b) if position[a] < position[b] else (b, a)
                parent[second] = first
    return {key: root(key) for key in parent}


def _claim(
    report: StoredReport, alive: bool, members: set[uuid.UUID], registry: SideRegistry
) -> CasualtyClaim:
    event = report.event
    figures = event.casualties
    assert figures is not None
    return CasualtyClaim(
        event=report.id,
        position=report.position,
        place=event.place.id,
        type=event_type(event),
        source=event.source.name,
        reliability=event.source.reliability,
        published_at=event.source.published_at,
        side=None if event.side is None else registry.canonical(event.side),
        casualties_side=None if figures.side is None else registry.canonical(figures.side),
        killed=figures.killed,
        low=figures.low,
        high=figures.high,
        wounded=figures.wounded,
        occurred_start=event.occurred.start,
        occurred_end=event.occurred.end,
        precision=event.occurred.precision,
        in_force=alive,
        relates_to=[
            ClaimLink(event=link.event, relation=link.relation)
            for link in event.relates_to
            if link.event in members
        ],
        violations=list(casualty_flags(figures)),
    )


def _spread(claims: Sequence[CasualtyClaim]) -> Spread:
    best = [c for c in claims if c.in_force and c.killed is not None]
    figures = [c.killed for c in best if c.killed is not None]
    return Spread(
        min_killed=min(figures, default=None),
        max_killed=max(figures, default=None),
        claims=len(best),
        sources=len({source_key(c.source) for c in best}),
    )


def incidents(
    reports: Sequence[StoredReport],
    listed: Callable[[StoredReport], bool] = lambda _: True,
    registry: SideRegistry = EMPTY,
) -> list[Incident]:
    """The incidents of ``reports`` (one place's, or several places': links never cross a
    place) that hold at least one claim ``listed`` keeps, in the order of their first
    report's position; each lists its listed claims in position order.

    ``reports`` are the events that carry figures and those that link events (confirmations,
    withdrawals), so that incidents and force follow every link among them. Sides are named
    as ``registry`` (the side registry as known at the answer's position) names them: a
    claim made under an alias is listed under its canonical side."""
    alive = in_force(reports)
    incident_of = _components(reports)
    first_position = {r.id: r.position for r in reports}
    members: dict[uuid.UUID, set[uuid.UUID]] = {}
    for key, root in incident_of.items():
        members.setdefault(root, set()).add(key)
    claims: dict[uuid.UUID, list[CasualtyClaim]] = {}
    for report in sorted(reports, key=lambda r: r.position):
        if report.event.casualties is None or not listed(report):
            continue
        root = incident_of[report.id]
        claim = _claim(report, alive[report.id], members[root], registry)
        claims.setdefault(root, []).append(claim)
    return [
        Incident(
            incident=root,
            first=first_position[root],
            place=found[0].place,
            claims=found,
            spread=_spread(found),
            violations=sum(1 for c in found if c.violations),
        )
        for root, found in sorted(claims.items(), key=lambda item: first_position[item[0]])
    ]
