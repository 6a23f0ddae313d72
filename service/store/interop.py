"""Importing a source file (ACLED, UCDP GED, PLOVER): rows to events with resolved places.

The format's reader (pure, ``service.domain.interop``) gives :class:`SourceRow` values; here
the place registry is read once per import, each row is prepared (``interop.prepare``: its
place matched, kept up to date with the places the import itself registers, its events
through the contract decoder), and becomes one append request: a row is stored whole or not
at all. Requests are committed in chunks of about ``chunk_size`` events, the next chunk
prepared while the previous one is written, as the NDJSON import does. Event ids derive from
the source's own ids, so the same file imported twice stores nothing new.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import asyncpg

from contracts.responses import ImportResult, RejectedLine
from service.domain.append import AppendRequest
from service.domain.errors import FrontlineError
from service.domain.interop.places import KnownPlace, PlaceIndex
from service.domain.interop.prepare import Refused, prepare_row
from service.domain.interop.rows import SourceRow
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
            prepared, flags, flagged_field = outcome
            if flags:
                tally.flags.append(
                    RejectedLine(
                        line=row.line,
                        reason="; ".join(flags),
                        field=flagged_field,
                        source_id=row.source_id,
                    )
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


async def _append(store: EventStore, pending: list[_Pending]) -> list[Outcome]:
    return await store.append_group([p.request for p in pending])
