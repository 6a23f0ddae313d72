"""Importing a source file (ACLED, UCDP GED, PLOVER): rows to events with resolved places.

The format's reader (pure, ``service.domain.interop``) gives :class:`SourceRow` values; here
the place registry is read once per import, each row is prepared (``interop.prepare``: its
place matched, kept up to date with the places the import itself registers, its events
through the contract decoder), and becomes one append request: a row is stored whole or not
at all. Requests are committed in chunks of about ``chunk_size`` events, the next chunk
prepared while the previous one is written, as the NDJSON import does. Event ids derive from
the source's own ids, so the same file imported twice stores nothing new. A row whose place
the import registers expects that place stream to be as the import left it (new, for its
first row): should another import have registered a place under the same id meanwhile, the
row is resolved once more against the registry as it is then, never merged into that place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import asyncpg

from contracts.events import Expectation
from contracts.responses import ImportResult, RejectedLine
from service.domain.append import AppendRequest
from service.domain.errors import FrontlineError, WrongExpectedVersion
from service.domain.interop.places import KnownPlace, PlaceIndex
from service.domain.interop.prepare import Refused, prepare_row
from service.domain.interop.rows import SourceRow
from service.domain.records import PreparedEvent
from service.store.appender import YIELD_EVERY
from service.store.events import EventStore, Outcome
from service.store.queries import SQL


async def known_places(pool: asyncpg.Pool) -> list[KnownPlace]:
    """The place registry as matching needs it."""
    rows = await pool.fetch(SQL["read_places_for_matching"])
    return [
        KnownPlace(
            id=r["id"], name=r["name"], aliases=tuple(r["aliases"]), lat=r["lat"], lon=r["lon"]
        )
        for r in rows
    ]


@dataclass(slots=True)
class _Pending:
    """A row on its way to the log."""

    line: int
    source_id: str | None
    request: AppendRequest
    row: SourceRow


class _NewPlaces:
    """The expectations that keep an import from writing into a place another import
    registered meanwhile under the same id (two same-named places read from two registry
    snapshots): the first row of a place this import registers expects the place stream to
    be new, each later one the version this import's own rows have brought it to."""

    def __init__(self, known: list[KnownPlace]) -> None:
        self._known = {p.id for p in known}
        self._events: dict[str, int] = {}

    def expect(self, prepared: tuple[PreparedEvent, ...]) -> tuple[Expectation, ...]:
        expectations = []
        for place in dict.fromkeys(p.place_id for p in prepared):
            if place not in self._known:
                version = self._events.get(place, 0)
                expectations.append(Expectation(place=place, version=version or "none"))
        for p in prepared:
            if p.place_id not in self._known:
                self._events[p.place_id] = self._events.get(p.place_id, 0) + 1
        return tuple(expectations)


@dataclass(slots=True)
class _Tally:
    accepted: int = 0
    duplicate: int = 0
    errors: list[RejectedLine] = field(default_factory=list)
    flags: list[RejectedLine] = field(default_factory=list)
    retry: list[SourceRow] | None = field(default_factory=list)
    """Rows refused because a place they registered was registered meanwhile (409), to
    resolve again against the registry as it is now; None on that second try."""

    def reject(self, row: SourceRow, refused: Refused) -> None:
        self.errors.append(
            RejectedLine(
                line=row.line, reason=refused.reason, field=refused.field, source_id=row.source_id
            )
        )

    def flag(self, row: SourceRow, flags: Sequence[str], columns: str | None) -> None:
        """Note a row stored as given but suspicious, with the columns it is about."""
        if flags:
            self.flags.append(
                RejectedLine(
                    line=row.line, reason="; ".join(flags), field=columns, source_id=row.source_id
                )
            )

    def count(self, pending: list[_Pending], outcomes: list[Outcome]) -> None:
        for item, outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, WrongExpectedVersion) and self.retry is not None:
                self.retry.append(item.row)
                continue
            if isinstance(outcome, WrongExpectedVersion):
                self.errors.append(
                    RejectedLine(
                        line=item.line,
                        reason=f"place {outcome.place!r} was registered by another import "
                        "while this one ran, twice: import the file again",
                        source_id=item.source_id,
                    )
                )
                continue
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
    known = await known_places(store.pool)
    index, new_places = PlaceIndex(known), _NewPlaces(known)
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
            item = _prepare(row, index, new_places, tally, submitter)
            if item is None:
                continue
            pending.append(item)
            events_in_chunk += len(item.request.events)
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
    if tally.retry:
        await _retry(store, tally, submitter)
    tally.errors.sort(key=lambda e: e.line)
    # A row the log refused is listed as rejected only, not also as flagged.
    refused = {e.line for e in tally.errors}
    flagged = [f for f in tally.flags if f.line not in refused]
    last_position, _ = await store.head()
    return ImportResult(
        accepted=tally.accepted,
        duplicate=tally.duplicate,
        rejected=len(tally.errors),
        errors=tally.errors,
        last_position=last_position,
        flagged=len(flagged),
        flags=flagged,
    )


async def _retry(store: EventStore, tally: _Tally, submitter: str | None) -> None:
    """Resolve again, against the registry as it is now, the rows whose new place another
    import registered meanwhile, and append them once more; never merged into that place."""
    rows, tally.retry = tally.retry or [], None
    known = await known_places(store.pool)
    index, new_places = PlaceIndex(known), _NewPlaces(known)
    lines = {row.line for row in rows}
    tally.flags = [f for f in tally.flags if f.line not in lines]
    pending: list[_Pending] = []
    for row in rows:
        item = _prepare(row, index, new_places, tally, submitter)
        if item is not None:
            pending.append(item)
    if pending:
        tally.count(pending, await _append(store, pending))
    tally.flags.sort(key=lambda f: f.line)


def _prepare(
    row: SourceRow,
    index: PlaceIndex,
    new_places: _NewPlaces,
    tally: _Tally,
    submitter: str | None,
) -> _Pending | None:
    """The append request of one row, or None when the row is refused (noted in the tally)."""
    outcome = prepare_row(row, index)
    if isinstance(outcome, Refused):
        tally.reject(row, outcome)
        return None
    prepared, flags, flagged_field = outcome
    tally.flag(row, flags, flagged_field)
    request = AppendRequest(
        events=prepared, expect=new_places.expect(prepared), submitter=submitter
    )
    return _Pending(row.line, row.source_id, request, row)


async def _append(store: EventStore, pending: list[_Pending]) -> list[Outcome]:
    return await store.append_group([p.request for p in pending])
