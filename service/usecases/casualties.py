"""Casualty figures side by side, a place's or a range's: what ``GET /v1/places/{id}/
casualties`` and ``GET /v1/casualties`` answer, one page at a time."""

from __future__ import annotations

from datetime import datetime

from contracts.casualties import Incident
from service.domain.casualties import StoredReport, incidents
from service.domain.registry import EMPTY, SideRegistry
from service.domain.time import valid_interval
from service.errors import InvalidParameter
from service.query import BBox
from service.store.casualties import CasualtyReader


def _after_position(cursor: str | None) -> int:
    """The position a place page's cursor names (the first event of its last incident)."""
    if not cursor:
        return 0
    if not cursor.isdecimal() or len(cursor) > 19:
        raise InvalidParameter(
            f"cursor must be the next_cursor of a previous page, not {cursor!r}", field="cursor"
        )
    return int(cursor)


async def place_page(
    reader: CasualtyReader,
    place_id: str,
    position: int,
    cursor: str | None,
    limit: int,
    registry: SideRegistry = EMPTY,
) -> tuple[list[Incident], str | None]:
    """Up to ``limit`` incidents of a place as known at ``position``, after ``cursor``, in
    the order of their first event, and the cursor of the next page (None on the last).
    Each incident is read whole: links never leave their place, so a place's events group
    completely. Sides are named as ``registry`` (the side registry at ``position``) names
    them."""
    after = _after_position(cursor)
    reports = await reader.reports([place_id], position)
    found = [i for i in incidents(reports, registry=registry) if i.first > after]
    if len(found) <= limit:
        return found, None
    kept = found[:limit]
    return kept, str(kept[-1].first)


async def range_page(
    reader: CasualtyReader,
    position: int,
    start: datetime | None,
    end: datetime | None,
    bbox: BBox | None,
    cursor: str | None,
    limit: int,
    registry: SideRegistry = EMPTY,
) -> tuple[list[Incident], str | None]:
    """The incidents of up to ``limit`` places (in id order, after the place ``cursor``
    names) whose claims' valid intervals meet ``start``..``end`` and whose points are in
    ``bbox``, as known at ``position``; each place's incidents whole, in the order of their
    first event; and the cursor of the next page (None on the last). A claim outside the
    range is left out of its incident; the incident's spread is over the claims listed. Sides
    are named as ``registry`` (the side registry at ``position``) names them."""
    places = await reader.places_in_range(position, start, end, bbox, cursor or "", limit + 1)
    more = len(places) > limit
    places = places[:limit]
    if not places:
        return [], None

    def listed(report: StoredReport) -> bool:
        valid_from, valid_to = valid_interval(report.event.occurred)
        return (start is None or valid_to > start) and (end is None or valid_from <= end)

    found = incidents(await reader.reports(places, position), listed, registry)
    found.sort(key=lambda i: (i.place, i.first))
    return found, places[-1] if more else None
