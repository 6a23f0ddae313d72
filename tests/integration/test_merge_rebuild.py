"""Merges of places through a rebuild that appends land in (DESIGN section 8).

A rebuild folds the places a merge joined from the streams joined with them, in its first
pass and in its catch-up rounds; merges, unmerges and reports to merged places made while
it folds and while it catches up are in the swapped-in rows, which are the same rows, every
column, as a rebuild with nothing appended during it.
"""

from __future__ import annotations

import asyncio
from typing import Final

import asyncpg

from contracts.events import Event, PlaceMerged, PlaceMergeRetracted
from service.domain.append import AppendRequest
from service.domain.records import prepare_event, prepare_merge
from service.projections.timelines import TimelineProjector
from service.settings import Settings
from service.store.db import Connector
from service.store.events import EventStore
from tests.integration.helpers import Conn
from tests.integration.test_projection_store import snapshot
from tests.integration.test_rebuild import Gate
from tests.unit.builders import GOV, ISIS, capture, control, source

RAQQA: Final = "sy-raqqa"
AR_RAQQAH: Final = "ar-raqqah"
TABQA: Final = "sy-tabqa"


async def _append(store: EventStore, *events: Event | PlaceMerged | PlaceMergeRetracted) -> None:
    """One request, one commit; it must succeed."""
    prepared = tuple(
        prepare_merge(e) if isinstance(e, PlaceMerged | PlaceMergeRetracted) else prepare_event(e)
        for e in events
    )
    (outcome,) = await store.append_group([AppendRequest(events=prepared)])
    assert isinstance(outcome, list), outcome


async def test_merges_during_a_rebuild_are_in_its_rows_and_equal_a_rebuild_alone(
    settings: Settings, pool: asyncpg.Pool, owner: Conn
) -> None:
    """Reports to three places and a merge; then, while the rebuild folds, a report to the
    merged place and the merge's retraction; while it catches up, a merge into another
    place and reports to both: the swapped-in rows equal the rows the appends wrote, and a
    rebuild done alone."""
    gate = Gate("folding", "catching-up")
    connector = Connector.of(settings)
    projector = TimelineProjector(rebuild_workers=2, on_rebuild=gate)
    store = EventStore(pool, projector)
    reuters, amaq = source("Reuters", "B"), source("Amaq", "D", ISIS)
    await _append(store, control(GOV, place=RAQQA, on="2017-06-01", by=reuters))
    await _append(store, capture(ISIS, place=AR_RAQQAH, on="2017-06-03", by=amaq))
    await _append(store, control(GOV, place=TABQA, on="2017-06-01", by=reuters))
    merge = PlaceMerged(place=RAQQA, merged=AR_RAQQAH, id=None)
    prepared = prepare_merge(merge)
    (outcome,) = await store.append_group([AppendRequest(events=(prepared,))])
    assert isinstance(outcome, list)

    task = projector.start_rebuild(connector)
    try:
        await gate.at("folding")
        await _append(store, control(ISIS, place=AR_RAQQAH, on="2017-06-05", by=amaq))
        await _append(
            store,
            PlaceMergeRetracted(retracts=prepared.id, place=RAQQA, merged=AR_RAQQAH),
        )
        gate.release("folding")
        await gate.at("catching-up")
        await _append(store, PlaceMerged(place=TABQA, merged=AR_RAQQAH))
        await _append(
            store,
            capture(ISIS, place=TABQA, on="2017-06-06", by=amaq),
            control(GOV, place=RAQQA, on="2017-06-07", by=reuters),
        )
        incremental = await snapshot(owner)  # the served rows, every commit appended
        gate.release("catching-up")
        report = await asyncio.wait_for(task, 120)
    finally:
        gate.release_all()
    head, _ = await store.head()
    assert report.position == head
    rebuilt = await snapshot(owner)
    assert {r[0] for r in rebuilt} == {RAQQA, AR_RAQQAH, TABQA}
    assert rebuilt == incremental
    await TimelineProjector(rebuild_workers=1).rebuild(connector)
    assert await snapshot(owner) == rebuilt
