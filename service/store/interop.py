"""Importing a source file (ACLED, UCDP GED, PLOVER): rows to events with resolved places.

The format's reader (pure, ``service.interop``) gives :class:`SourceRow` values; here
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
from service.domain.records import PreparedEvent
from service.interop.places import KnownPlace, PlaceIndex
from service.interop.prepare import Refused, prepare_row
from service.interop.rows import SourceRow
from service.store.appender import (
    YIELD_EVERY,
    Chunk,
    ChunkWriter,
    Listing,
    log_stop,
    stopped,
    through,
)
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
    flags: Sequence[str] = ()
    flagged_field: str | None = None


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
    errors: Listing
    flags: Listing
    accepted: int = 0
    duplicate: int = 0
    retry: list[SourceRow] | None = field(default_factory=list)
    """Rows refused because a place they registered was registered meanwhile (409), to
    resolve again against the registry as it is now; None on that second try."""

    def reject(self, row: SourceRow, refused: Refused) -> None:
        self.errors.add(
            RejectedLine(
                line=row.line, reason=refused.reason, field=refused.field, source_id=row.source_id
            )
        )

    def flag(self, item: _Pending) -> None:
        """Note a row stored as given but suspicious, with the columns it is about."""
        if item.flags:
            self.flags.add(
                RejectedLine(
                    line=item.line,
                    reason="; ".join(item.flags),
                    field=item.flagged_field,
                    source_id=item.source_id,
                )
            )

    def count(self, done: tuple[Chunk[_Pending], list[Outcome]] | None) -> None:
        if done is None:
            return
        chunk, outcomes = done
        for item, outcome in zip(chunk.items, outcomes, strict=True):
            if isinstance(outcome, WrongExpectedVersion) and self.retry is not None:
                self.retry.append(item.row)
                continue
            if isinstance(outcome, WrongExpectedVersion):
                self.errors.add(
                    RejectedLine(
                        line=item.line,
                        reason=f"place {outcome.place!r} was registered by another import "
                        "while this one ran, twice: import the file again",
                        source_id=item.source_id,
                    )
                )
                continue
            if isinstance(outcome, FrontlineError):
                self.errors.add(
                    RejectedLine(
                        line=item.line,
                        reason=outcome.detail,
                        field=outcome.field,
                        source_id=item.source_id,
                    )
                )
                continue
            # A row the log refused is listed as rejected only, never also as flagged.
            self.flag(item)
            for receipt in outcome:
                if receipt.duplicate:
                    self.duplicate += 1
                else:
                    self.accepted += 1

    def result(self, last_position: int | None) -> ImportResult:
        return ImportResult(
            accepted=self.accepted,
            duplicate=self.duplicate,
            rejected=self.errors.count,
            errors=self.errors.items(),
            last_position=last_position,
            flagged=self.flags.count,
            flags=self.flags.items(),
        )


async def import_rows(
    store: EventStore,
    rows: Iterable[SourceRow],
    *,
    chunk_size: int,
    submitter: str | None = None,
    progress: Callable[[int], None] | None = None,
    max_errors: int | None = None,
) -> ImportResult:
    """Append the events of every mappable row, committed in chunks; report the others.

    ``progress`` is told the line each row starts on, as rows are prepared. Callers read
    the file whole first (``list(read(data))``), so that a file unreadable as a whole stores
    nothing. The answer counts every rejected and flagged row and lists the first
    ``max_errors`` of each. Should the import fail before its end, it raises
    :class:`ImportStopped` once the chunk being written has ended (the fate of every row up
    to ``through_line``; nothing after it stored), or re-raises a cancellation.
    """
    tally = _Tally(Listing(max_errors), Listing(max_errors))
    writer: ChunkWriter[_Pending] = ChunkWriter(store)
    chunk: Chunk[_Pending] = Chunk()
    consumed = 0
    try:
        known = await known_places(store.pool)
        index, new_places = PlaceIndex(known), _NewPlaces(known)
        for n, row in enumerate(rows, 1):
            consumed = row.line
            if progress is not None:
                progress(row.line)
            item = _prepare(row, index, new_places, tally, submitter)
            if item is not None:
                chunk.add(item, item.request, row.line)
            if writer.busy and n % YIELD_EVERY == 0:
                # Let the chunk being written move on while this one is prepared.
                await asyncio.sleep(0)
            if chunk.events >= chunk_size:
                tally.count(await writer.send(chunk))
                chunk = Chunk()
        tally.count(await writer.send(chunk) if chunk.items else None)
        chunk = Chunk()
        tally.count(await writer.finish())
        if tally.retry:
            await _retry(store, tally, submitter)
        last_position, _ = await store.head()
    except BaseException as error:
        tally.count(await writer.stop())
        for row in tally.retry or ():
            # Refused once because another import registered their place meanwhile, and not
            # tried again: their fate is known (not stored).
            tally.errors.add(
                RejectedLine(
                    line=row.line,
                    reason="not stored: the import stopped before this row could be retried",
                    source_id=row.source_id,
                )
            )
        through_line = through(consumed, (writer.failed, chunk))
        result = tally.result(None)
        log_stop(error, result, through_line)
        if not isinstance(error, Exception):
            raise
        raise stopped(error, result, through_line, "import") from error
    return tally.result(last_position)


async def _retry(store: EventStore, tally: _Tally, submitter: str | None) -> None:
    """Resolve again, against the registry as it is now, the rows whose new place another
    import registered meanwhile, and append them once more; never merged into that place."""
    rows = tally.retry or []
    known = await known_places(store.pool)
    index, new_places = PlaceIndex(known), _NewPlaces(known)
    chunk: Chunk[_Pending] = Chunk()
    for row in rows:
        item = _prepare(row, index, new_places, tally, submitter)
        if item is not None:
            chunk.add(item, item.request, row.line)
    outcomes = await store.append_group(chunk.requests) if chunk.items else []
    tally.retry = None
    tally.count((chunk, outcomes))


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
    request = AppendRequest(
        events=prepared, expect=new_places.expect(prepared), submitter=submitter
    )
    return _Pending(row.line, row.source_id, request, row, flags, flagged_field)
