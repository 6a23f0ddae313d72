"""The reads behind the casualty figures: the events of some places that carry figures or
links, and the places whose figures meet a range of valid time and a box."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from contracts.events import event_decoder
from service.domain.casualties import StoredReport
from service.query import BBox
from service.store.queries import SQL


class CasualtyReader:
    """Reads of the log for :mod:`service.usecases.casualties`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def reports(self, places: Sequence[str], position: int) -> list[StoredReport]:
        """The events about ``places`` known at ``position`` that carry figures or link to
        another event, in position order."""
        rows = await self.pool.fetch(SQL.read_casualty_reports, list(places), position)
        return [StoredReport(r["position"], event_decoder.decode(r["payload"])) for r in rows]

    async def places_in_range(
        self,
        position: int,
        start: datetime | None,
        end: datetime | None,
        bbox: BBox | None,
        after: str,
        limit: int,
    ) -> list[str]:
        """Up to ``limit`` place ids after ``after``, in id order, with figures whose valid
        interval meets ``start``..``end`` (both included), whose point is in ``bbox``."""
        box = (bbox.west, bbox.south, bbox.east, bbox.north) if bbox else (None,) * 4
        rows = await self.pool.fetch(
            SQL.read_casualty_places_in_range, position, start, end, after, *box, limit
        )
        return [r["place_id"] for r in rows]
