"""The answers that show events (the event reads, a place's events and history) with each
event read through the registries as known at the answer's position, beside what it stated
(:mod:`service.domain.reading`). The log export does the same in :mod:`.export`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import msgspec

from contracts.front import HistoryEntry, PlaceEvent
from contracts.responses import StoredEvent
from service.domain.reading import EventReader, side_as_known
from service.store.events import EventFilter, EventStore


async def stored_read(store: EventStore, events: Sequence[StoredEvent]) -> list[StoredEvent]:
    """Events of the log (a page, one event) with their reading as known at the log's head
    once they were read (every one of them is at or below it)."""
    position, _ = await store.head()
    reader = EventReader(await store.side_registry(position), position)
    return [reader.stored(event) for event in events]


async def stored_stream(
    store: EventStore, after: int, where: EventFilter, limit: int | None
) -> AsyncIterator[StoredEvent]:
    """The selected events after ``after`` up to the log's head when the stream starts (a
    snapshot: an event appended meanwhile is not in it), each with its reading as known at
    that head: the log export's lines, when the selection is the whole log."""
    position, _ = await store.head()
    reader = EventReader(await store.side_registry(position), position)
    async for event in store.stream(after, where, limit):
        if event.position > position:
            return
        yield reader.stored(event)


async def place_events_read(
    store: EventStore, events: Sequence[PlaceEvent], position: int
) -> list[PlaceEvent]:
    """A place's events with their reading as known at ``position`` (the answer's)."""
    reader = EventReader(await store.side_registry(position), position)
    return [
        msgspec.structs.replace(event, read_as=reader.read(bytes(event.event))) for event in events
    ]


async def history_read(
    store: EventStore, entries: Sequence[HistoryEntry], position: int
) -> list[HistoryEntry]:
    """A place's history with each event's side as the side registry as known at
    ``position`` (the answer's) reads it."""
    registry = await store.side_registry(position)
    answer = []
    for entry in entries:
        events = []
        for event in entry.events:
            side, name = side_as_known(registry, event.side)
            events.append(msgspec.structs.replace(event, side_as_known=side, side_name=name))
        answer.append(msgspec.structs.replace(entry, events=events))
    return answer
