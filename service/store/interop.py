"""Importing a source file (ACLED, UCDP GED, PLOVER): rows to events with resolved places.

The format's reader (pure, ``service.domain.interop``) gives :class:`SourceRow` values; here
each row's place is matched against the registry (read once per import, then kept up to date
with the places the import itself registers), its events go through the contract decoder, and
the row becomes one append request: a row is stored whole or not at all. Requests are
committed in chunks of about ``chunk_size`` events, the next chunk prepared while the previous
one is written, as the NDJSON import does. Event ids derive from the source's own ids, so the
same file imported twice stores nothing new.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from contracts.events import event_decoder
from contracts.responses import ImportResult, RejectedLine
from service.domain.append import AppendRequest
from service.domain.errors import FrontlineError, InvalidEvent
from service.domain.interop.places import KnownPlace, Match, PlaceIndex
from service.domain.interop.rows import PlaceRef, SourceRow
from service.domain.records import PreparedEvent, prepare_event
from service.domain.validation import field_of
from service.store.appender import YIELD_EVERY
from service.store.events import EventStore, Outcome
from service.store.queries import SQL

_encode = msgspec.json.Encoder().encode


async def known_places(pool: asyncpg.Pool) -> list[KnownPlace]:
    """The place registry as matching needs it."""
    rows = await pool.fetch(SQL["read_places_for_matching"])
    return [
        KnownPlace(
            id=r["id"], name=r["name"], aliases=tuple(r["aliases"]), lat=r["lat"], lon=r["lon"]
        )
        for r in rows
    ]


def place_of(ref: PlaceRef, match: Match) -> dict[str, Any]:
    """The contract ``place`` of an imported event: the matched id and what the source said."""
    place: dict[str, Any] = {"id": match.place_id, "name": ref.name}
    for key in ("kind", "lat", "lon", "precision"):
        value = getattr(ref, key)
        if value is not None:
            place[key] = value
    return place


@dataclass(slots=True)
class _Pending:
    """A row on its way to the log."""

    line: int
    source_id: str | None
    request: AppendRequest


@dataclass(slots=True)
class _Tally:
    accepted: int = 0
    duplicate: int = 0
    errors: list[RejectedLine] = field(default_factory=list)
    flags: list[RejectedLine] = field(default_factory=list)

    def reject(self, row: SourceRow, refused: Refused) -> None:
        self.errors.append(
            RejectedLine(
                line=row.line, reason=refused.reason, field=refused.field, source_id=row.source_id
            )
        )

    def count(self, pending: list[_Pending], outcomes: list[Outcome]) -> None:
        for item, outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, FrontlineError):
                self.errors.append(
                    RejectedLine(
                        line=item.line,
                        reason=outcome.detail,
                        field=outcome.field,
                        source_id=item.source_id,
                    )
                )
                continue
            for receipt in outcome:
                if receipt.duplicate:
                    self.duplicate += 1
                else:
                    self.accepted += 1


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a row is not imported, and the column or event field it is about."""

    reason: str
    field: str | None = None


def prepare_row(
    row: SourceRow, index: PlaceIndex
) -> tuple[tuple[PreparedEvent, ...], list[str]] | Refused:
    """A mapped row's events with its place resolved, validated, and its flags."""
    if row.error is not None:
        return Refused(row.error, row.fields[0] if row.fields else None)
    if row.place is None or not row.events:
        return Refused("the record maps to no event")
    match = index.resolve(row.place)
    place = place_of(row.place, match)
    prepared: list[PreparedEvent] = []
    flags = list(row.flags)
    if match.flag is not None:
        flags.append(match.flag)
    for event in row.events:
        try:
            one = prepare_event(event_decoder.decode(_encode({**event, "place": place})))
        except msgspec.ValidationError as error:
            detail, where = field_of(error)
            return Refused(f"{event.get('type')} event: {detail}", where)
        except InvalidEvent as error:
            return Refused(f"{event.get('type')} event: {error.detail}", error.field)
        flags.extend(f for f in one.flags if f not in flags)
        prepared.append(one)
    return tuple(prepared), flags


async def import_rows(
    store: EventStore,
    rows: Iterable[SourceRow],
    *,
    chunk_size: int,
    submitter: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Append the events of every mappable row, committed in chunks; report the others.

    ``progress`` is told the line each row starts on, as rows are prepared. Callers read
    the file whole first (``list(read(data))``), so that a file unreadable as a whole stores
    nothing.
    """
    index = PlaceIndex(await known_places(store.pool))
    tally = _Tally()
    pending: list[_Pending] = []
    events_in_chunk = 0
    writing: asyncio.Task[list[Outcome]] | None = None
    written: list[_Pending] = []

    async def settle() -> None:
        nonlocal writing
        if writing is not None:
            tally.count(written, await writing)
            writing = None

    try:
        for n, row in enumerate(rows, 1):
            if progress is not None:
                progress(row.line)
            outcome = prepare_row(row, index)
            if isinstance(outcome, Refused):
                tally.reject(row, outcome)
                continue
            prepared, flags = outcome
            if flags:
                tally.flags.append(
                    RejectedLine(line=row.line, reason="; ".join(flags), source_id=row.source_id)
                )
            request = AppendRequest(events=prepared, submitter=submitter)
            pending.append(_Pending(row.line, row.source_id, request))
            events_in_chunk += len(prepared)
            if writing is not None and n % YIELD_EVERY == 0:
                # Let the chunk being written move on while this one is prepared.
                await asyncio.sleep(0)
            if events_in_chunk >= chunk_size:
                await settle()
                written = pending
                writing = asyncio.create_task(_append(store, pending))
                pending, events_in_chunk = [], 0
    finally:
        await settle()
    if pending:
        tally.count(pending, await _append(store, pending))
    tally.errors.sort(key=lambda e: e.line)
    last_position, _ = await store.head()
    return ImportResult(
        accepted=tally.accepted,
        duplicate=tally.duplicate,
        rejected=len(tally.errors),
        errors=tally.errors,
        last_position=last_position,
        flagged=len(tally.flags),
        flags=tally.flags,
    )


async def _append(store: EventStore, pending: list[_Pending]) -> list[Outcome]:
    return await store.append_group([p.request for p in pending])
