"""Export: the log, or the front, reproducibly (the same question, the same bytes).

The log up to a commit position is streamed as NDJSON (each stored event as
``GET /v1/events`` replays it), as CSV in Frontline's columns, or as CSV in ACLED's columns
plus Frontline's (the ACLED writer is the format's adapter, ``service.interop.acled``).
The front at a valid time, as known at a position, is CSV with each place as the log knew it
then. CSV follows RFC 4180 (CRLF, quotes where needed); empty cells are nulls; booleans are
``true``/``false``; a text cell a spreadsheet would run as a formula starts with ``'``
(``service.interop.spreadsheet``). Their ETags are HTTP's (``service.api.etags``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime
from typing import Final

import msgspec

from contracts.events import REGISTRY_TYPES, Event, event_decoder, event_type
from contracts.responses import StoredEvent
from contracts.timeline import Segment
from service.domain.reading import EventReader, reading
from service.domain.registry import EMPTY, SideRegistry
from service.domain.time import utc_text, valid_interval
from service.interop import acled
from service.interop.spreadsheet import neutralise
from service.projections.reads import FrontReader, StateQuery
from service.query import KnownAt
from service.store.events import EventFilter, EventStore

LOG_FORMATS: Final = ("ndjson", "csv", "acled")
EXPORT_VERSION: Final = "frontline-export-v3"
"""v2: formula-like CSV cells neutralised; v3: each event read through the registries as
known at the export's position beside what it stated (``read_as``, the ``*_as_known``
columns)."""
LOG_COLUMNS: Final = (
    "position", "id", "place", "place_version", "type", "valid_from", "valid_to",
    "recorded_at", "commit_position", "source", "reliability", "alignment", "side",
    "opponent", "hedge", "credibility", "killed", "hash", "payload",
    "side_as_known", "side_name", "opponent_as_known", "opponent_name", "source_as_known",
    "reliability_as_known", "alignment_as_known",
)  # fmt: skip
"""The columns of the log's CSV: what each event stated, then (``*_as_known``, added in v3
at the end) how the registries as known at the export's position read it."""
STATE_COLUMNS: Final = (
    "place_id", "name", "lat", "lon", "controller", "status", "status_by", "disputed",
    "confidence", "basis", "held_since", "sources",
)  # fmt: skip


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, str):
        return neutralise(value)  # text only: numbers stay numbers (service.interop.spreadsheet)
    return str(value)


def csv_rows(rows: Iterable[Sequence[object]]) -> bytes:
    """RFC 4180 CSV of the rows (each cell through the export's formatting)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue().encode()


def log_row(
    stored: StoredEvent, event: Event, registry: SideRegistry = EMPTY, position: int = 0
) -> tuple[object, ...]:
    """One stored event as a row of LOG_COLUMNS: what it stated, then how ``registry`` (as
    known at ``position``) reads it."""
    start, end = valid_interval(event.occurred)
    figures = event.casualties
    source = event.source
    read = reading(
        registry, position, side=event.side, opponent=event.opponent, source=source.name,
        reliability=source.reliability, alignment=source.alignment,
    )  # fmt: skip
    return (
        stored.position, stored.id, stored.place, stored.place_version, event_type(event),
        start, end, stored.recorded_at, stored.commit_position, source.name,
        source.reliability, source.alignment, event.side, event.opponent,
        event.hedge, event.credibility, figures.killed if figures is not None else None,
        stored.hash, bytes(stored.event).decode(),
        read.side, read.side_name, read.opponent, read.opponent_name, read.source,
        read.reliability, read.alignment,
    )  # fmt: skip


def registry_log_row(stored: StoredEvent) -> tuple[object, ...]:
    """A registry event (no valid time, no source) as a row of LOG_COLUMNS."""
    return (
        stored.position, stored.id, stored.place, stored.place_version, stored.type,
        None, None, stored.recorded_at, stored.commit_position, None, None, None, None, None,
        None, None, None, stored.hash, bytes(stored.event).decode(),
        None, None, None, None, None, None, None,
    )  # fmt: skip


def state_row(
    place_id: str,
    name: str,
    point: tuple[float, float] | None,
    segment: Segment,
    sources: Iterable[str],
) -> tuple[object, ...]:
    """One place's segment as a row of STATE_COLUMNS (``point`` is lat, lon)."""
    lat, lon = point if point is not None else (None, None)
    return (
        place_id, name, lat, lon, segment.controller, segment.status, segment.status_by,
        segment.disputed, segment.confidence, segment.basis, segment.held_since,
        "; ".join(sorted(set(sources))),
    )  # fmt: skip


async def log_at(front: FrontReader, known: KnownAt) -> tuple[int, bytes]:
    """The commit position ``known`` names in the log (default: the head) and its chain hash."""
    resolved = await front.resolve(known, log=True)
    assert resolved.chain_hash is not None  # asked for with log=True
    return resolved.position, resolved.chain_hash


_encode = msgspec.json.Encoder().encode
_BATCH: Final = 1000
"""Events per chunk of the stream."""


def _state_force(registry: SideRegistry) -> Callable[[str | None], bool]:
    """Whether a side is a state force, for the ACLED export: its kind in the side registry
    as known at the export's position; the datasets' naming conventions for a side the
    registry does not know (``acled.named_state_force``)."""

    def state_force(side: str | None) -> bool:
        kind = None if side is None else registry.kind_of(side)
        return acled.named_state_force(side) if kind is None else kind == "state_force"

    return state_force


async def log_chunks(store: EventStore, position: int, fmt: str) -> AsyncIterator[bytes]:
    """The log's events 1..``position`` as NDJSON lines, or CSV rows (header first) in
    Frontline's columns (``csv``) or ACLED's plus Frontline's (``acled``)."""
    if fmt == "csv":
        yield csv_rows([LOG_COLUMNS])
    elif fmt == "acled":
        yield csv_rows([acled.EXPORT_COLUMNS])
    batch: list[bytes] = []
    rows: list[tuple[object, ...]] = []
    state_force: Callable[[str | None], bool] | None = None
    if position == 0:
        return
    registry = await store.side_registry(position)
    reader = EventReader(registry, position)
    async for stored in store.stream(0, EventFilter(), position):
        registry_event = stored.type in REGISTRY_TYPES
        if fmt == "csv":
            rows.append(
                registry_log_row(stored)
                if registry_event
                else log_row(stored, event_decoder.decode(bytes(stored.event)), registry, position)
            )
            if len(rows) >= _BATCH:
                yield csv_rows(rows)
                rows.clear()
        elif fmt == "acled":
            if registry_event:
                continue  # ACLED has no rows for a registry's edits
            if state_force is None:
                state_force = _state_force(registry)
            exported = acled.export_row(
                position=stored.position,
                event_id=str(stored.id),
                kind=stored.type,
                place_id=stored.place,
                recorded_at=stored.recorded_at,
                event=event_decoder.decode(bytes(stored.event)),
                state_force=state_force,
            )
            if exported is not None:
                rows.append(exported)
            if len(rows) >= _BATCH:
                yield csv_rows(rows)
                rows.clear()
        else:
            batch.append(_encode(reader.stored(stored)))
            if len(batch) >= _BATCH:
                yield b"\n".join(batch) + b"\n"
                batch.clear()
    if rows:
        yield csv_rows(rows)
    if batch:
        yield b"\n".join(batch) + b"\n"


async def front_csv(front: FrontReader, query: StateQuery, known: KnownAt) -> tuple[int, bytes]:
    """The whole front ``query`` asks for (every page), as known at the position ``known``
    names, as CSV with places as the log knew them then; and that position."""
    position = (await front.rows_at(known)).position
    items = await front.whole_state(dataclasses.replace(query, known_position=position))
    places = await front.places_as_known([item.place.id for item in items], position)
    supporting = sorted({e for item in items for e in item.segment.events}, key=lambda u: u.int)
    sources = await front.event_sources(supporting)
    rows: list[tuple[object, ...]] = [STATE_COLUMNS]
    for item in items:
        name, point = places.get(item.place.id, (item.place.name, None))
        names = [sources[e] for e in item.segment.events if e in sources]
        rows.append(state_row(item.place.id, name, point, item.segment, names))
    return position, csv_rows(rows)
