"""Shapes of Frontline's answers."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from msgspec import Struct


class _Output(Struct, frozen=True, kw_only=True):
    """Base of every answer struct."""


class Receipt(_Output, frozen=True):
    """What the log says about one appended (or already stored) event."""

    id: uuid.UUID
    position: int
    place: str
    place_version: int
    recorded_at: datetime
    commit_position: int
    """The last position of the commit that made this event visible."""
    duplicate: bool = False
    """True when the id was already stored with the same content (an idempotent retry)."""
    flags: tuple[str, ...] = ()
    """Things stored as given but worth a look, such as casualty figures out of order."""


class AppendResult(_Output, frozen=True):
    """The receipts of one POST, in the order the events were sent."""

    receipts: list[Receipt]


class RejectedLine(_Output, frozen=True):
    """One NDJSON line (or source record) that was not stored, or was flagged, and why."""

    line: int
    """The 1-based line where the line or record starts (a JSON array: the record's index)."""
    reason: str
    field: str | None = None
    id: uuid.UUID | None = None
    source_id: str | None = None
    """The source's own id of the record (ACLED event_id_cnty, UCDP id ...), when known."""


class ImportResult(_Output, frozen=True):
    """The outcome of a bulk import (NDJSON, or a source format through ``/v1/imports``).

    ``accepted`` and ``duplicate`` count events (a source record may give several);
    ``rejected`` and ``flagged`` count lines or records, each listed in ``errors`` or
    ``flags`` with its line, the source's id and the reason.
    """

    accepted: int
    duplicate: int
    rejected: int
    errors: list[RejectedLine]
    last_position: int | None
    """The log's last position once the import finished."""
    flagged: int = 0
    """Records imported as given but worth a look (e.g. casualty figures out of order)."""
    flags: list[RejectedLine] = msgspec.field(default_factory=list)


class StoredEvent(_Output, frozen=True):
    """An event as the log holds it: the client's event and the server's fields."""

    position: int
    id: uuid.UUID
    place: str
    place_version: int
    type: str
    recorded_at: datetime
    commit_position: int
    hash: str
    prev_hash: str
    payload_digest: str
    event: msgspec.Raw


class LinkedFrom(_Output, frozen=True):
    """An event that links to the one asked for."""

    id: uuid.UUID
    position: int
    relation: str


class EventDetail(_Output, frozen=True):
    """One event, with the events that link to it (``relates_to`` in reverse)."""

    event: StoredEvent
    linked_from: list[LinkedFrom]
    submitter: str | msgspec.UnsetType | None = msgspec.UNSET
    """The name of the API key that appended it (null: before keys); only for the audit
    and admin roles, absent otherwise."""


class EventFilters(_Output, frozen=True, omit_defaults=True):
    """The filters that selected a page of the log, as the server read them; a filter not
    applied is absent. Every one given must hold (AND)."""

    place: str | None = None
    type: str | None = None
    source: str | None = None
    """The source's name as given (matched as the log keys sources: case and spacing
    folded)."""
    side: str | None = None
    """Events whose ``side`` or ``opponent`` is this side."""
    actor: str | None = None
    """Events whose ``actor`` is this text (case folded)."""
    country: str | None = None
    """Events about this place or a place inside it (its ``parent`` chain names it)."""
    bbox: tuple[float, float, float, float] | None = None
    """west, south, east, north: events about places located inside."""
    valid_from: datetime | None = None
    """Events whose valid interval ends after this instant."""
    valid_to: datetime | None = None
    """Events whose valid interval starts at or before this instant."""
    recorded_from: datetime | None = None
    """Events recorded at or after this instant."""
    recorded_to: datetime | None = None
    """Events recorded at or before this instant."""


class EventPage(_Output, frozen=True):
    """A page of the log in position order, after ``after`` (or the cursor)."""

    events: list[StoredEvent]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; null on the last page (the log's end when it
    was read: a follower resumes with ``after`` set to the last position it holds)."""
    next: str | None
    """The relative URL of the next page (this query, ``cursor`` set); null on the last page."""
    filters: EventFilters
    """The filters applied."""


class ReplicaHealth(_Output, frozen=True, omit_defaults=True):
    """A read replica as the service last checked it."""

    name: str
    """``replica-N``: the N-th URL of ``FRONTLINE_READ_URLS``."""
    applied_position: int
    """The last log position it has applied (its own ``log_head``)."""
    lag_positions: int
    """Positions it trails the primary's head by."""
    lag_seconds: float
    """Age of the oldest primary commit it has not applied (0: it has them all)."""
    in_rotation: bool
    """Whether it answers reads (false: down, or lagging past ``FRONTLINE_READ_MAX_LAG``)."""
    error: str | None = None
    """Why the last check could not read it."""


class Health(_Output, frozen=True, omit_defaults=True):
    """Liveness or readiness."""

    status: str
    detail: str | None = None
    database: str | None = None
    migration: str | None = None
    replicas: list[ReplicaHealth] | None = None
    """Each read replica's position and lag (``/ready``, when ``FRONTLINE_READ_URLS`` is set)."""


class Problem(_Output, frozen=True, omit_defaults=True):
    """RFC 9457 problem details, with Frontline's extension members."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = None
    place: str | None = None
    expected: int | str | None = None
    actual: int | None = None
    id: str | None = None
    request_id: str | None = None
    through_line: int | None = None
    """An import that stopped before its end: every line up to this one has its fate in
    ``result``; nothing after it was stored (rejected lines after it may be listed too)."""
    result: ImportResult | None = None
    """An import that stopped before its end: what it did up to ``through_line``."""
