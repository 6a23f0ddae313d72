"""What each client method asks of the server: the request, and how its answer is read.

The sync :class:`~frontline.client.Client` and the async
:class:`~frontline.client.AsyncClient` build their requests here, so the two send the same
bytes for the same call; they differ only in how they wait.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Final, Literal, TypeAlias, TypeVar

import msgspec

from contracts.audit import SignedHead
from contracts.events import Expectation
from contracts.front import HistoryEntry, NetChange, PlaceState, Transition
from contracts.responses import StoredEvent
from frontline.client.ndjson import EventLike, encode, with_id
from frontline.client.pages import PageWalk, query
from frontline.client.tables import Casualty, casualty_of

T = TypeVar("T")

JSON: Final = "application/json"
NDJSON: Final = "application/x-ndjson"
SSE: Final = "text/event-stream"

When: TypeAlias = str | date | datetime
"""A valid time or a known time: text as the API takes it (``2017-06-05``,
``position:30``), or a date, or a datetime with its offset."""

Version: TypeAlias = int | Literal["none", "any-existing"]
Expect: TypeAlias = Sequence[Expectation] | Mapping[str, Version]
"""Preconditions of a batch: the contract's :class:`Expectation` structs, or a mapping of
place id to the version its stream must be at (``"none"``: no events yet,
``"any-existing"``: some)."""

ImportFormat: TypeAlias = Literal["acled", "ucdp-ged", "plover"]
FileSource: TypeAlias = str | os.PathLike[str] | bytes | IO[bytes]
"""A file to send: its path (``str`` is a path), its bytes, or a binary file."""

#: The media type each source format is sent as.
IMPORT_MEDIA: Final = {"acled": "text/csv", "ucdp-ged": "text/csv", "plover": JSON}


@dataclass(frozen=True)
class Request:
    """One HTTP request, as both clients send it."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None


def known(value: When | None) -> str | None:
    """``known_at`` as the API reads it (a position given as text stays as it is)."""
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def append(event: EventLike, key: str) -> Request:
    """POST one event, with its id (the caller's, or derived from ``key`` at index 0)."""
    return Request(
        "POST", "/v1/events", headers={"content-type": JSON}, content=encode(with_id(event, key, 0))
    )


def _expectations(expect: Expect) -> list[Expectation]:
    if isinstance(expect, Mapping):
        return [Expectation(place=place, version=version) for place, version in expect.items()]
    return list(expect)


class _Batch(msgspec.Struct, omit_defaults=True):
    """An atomic batch as sent: events already with their ids (dicts or structs)."""

    events: list[Any]
    expect: list[Expectation] = msgspec.field(default_factory=list)


def batch(events: Iterable[EventLike], key: str, expect: Expect | None) -> Request:
    """POST an atomic batch, each event with its id (derived at its index when it has
    none), and the preconditions."""
    keyed = [with_id(event, key, index) for index, event in enumerate(events)]
    body = _Batch(events=keyed, expect=_expectations(expect or ()))
    return Request(
        "POST", "/v1/events", headers={"content-type": JSON}, content=msgspec.json.encode(body)
    )


def ndjson_chunk(body: bytes) -> Request:
    """POST one chunk of an NDJSON stream (its lines already carry their ids)."""
    return Request("POST", "/v1/events", headers={"content-type": NDJSON}, content=body)


def file_bytes(source: FileSource) -> bytes:
    """The bytes of a file to send (read whole: the server reads an import whole too)."""
    if isinstance(source, bytes):
        return source
    if isinstance(source, str | os.PathLike):
        return Path(source).read_bytes()
    return source.read()


def import_file(source: FileSource, fmt: ImportFormat) -> Request:
    """POST a source file to ``/v1/imports`` in its format."""
    return Request(
        "POST",
        "/v1/imports",
        params={"format": fmt},
        headers={"content-type": IMPORT_MEDIA.get(fmt, "application/octet-stream")},
        content=file_bytes(source),
    )


def event(event_id: uuid.UUID | str) -> Request:
    """GET one stored event and the events linking to it."""
    return Request("GET", f"/v1/events/{event_id}")


_events: Final = msgspec.json.Decoder(list[StoredEvent])
_states: Final = msgspec.json.Decoder(list[PlaceState])
_transitions: Final = msgspec.json.Decoder(list[Transition])
_net: Final = msgspec.json.Decoder(list[NetChange])
_entries: Final = msgspec.json.Decoder(list[HistoryEntry])


def events(
    *, after: int | None, place: str | None, type_: str | None, source: str | None, limit: int
) -> PageWalk[StoredEvent]:
    """The log in position order, page by page."""
    params = query(after=after, place=place, type_=type_, source=source, limit=limit)
    return PageWalk("/v1/events", params, "events", _events.decode)


def _casualties(raw: msgspec.Raw) -> list[Casualty]:
    return [c for c in map(casualty_of, _events.decode(raw)) if c is not None]


def casualties(
    *, place: str | None, source: str | None, type_: str | None, limit: int
) -> PageWalk[Casualty]:
    """The casualty claims of the log's events (``type_``: only those events; None: every
    event that carries figures, read through the whole log)."""
    params = query(place=place, type_=type_, source=source, limit=limit)
    return PageWalk("/v1/events", params, "events", _casualties)


def state(
    *,
    valid_at: When | None,
    known_at: When | None,
    bbox: Sequence[float] | None,
    side: str | None,
    status: str | None,
    disputed: bool | None,
    limit: int,
) -> PageWalk[PlaceState]:
    """The front at a valid time, place by place."""
    params = query(
        valid_at=valid_at,
        known_at=known(known_at),
        bbox=bbox,
        side=side,
        status=status,
        disputed=disputed,
        limit=limit,
    )
    return PageWalk("/v1/state", params, "items", _states.decode, pin_known_at=True)


def disputes(*, valid_at: When | None, known_at: When | None, limit: int) -> PageWalk[PlaceState]:
    """The disputed places at a valid time."""
    params = query(valid_at=valid_at, known_at=known(known_at), limit=limit)
    return PageWalk("/v1/disputes", params, "items", _states.decode, pin_known_at=True)


def changes(
    *,
    from_: When,
    to: When,
    known_at: When | None,
    place: str | None,
    side: str | None,
    bbox: Sequence[float] | None,
    net: bool,
    limit: int,
) -> PageWalk[Transition] | PageWalk[NetChange]:
    """Every change of the front in a range (``net``: each place's net change)."""
    params = query(
        from_=from_,
        to=to,
        known_at=known(known_at),
        place=place,
        side=side,
        bbox=bbox,
        net=True if net else None,
        limit=limit,
    )
    if net:
        return PageWalk("/v1/state/changes", params, "items", _net.decode, pin_known_at=True)
    return PageWalk("/v1/state/changes", params, "items", _transitions.decode, pin_known_at=True)


def history(place_id: str, *, limit: int) -> PageWalk[HistoryEntry]:
    """A place's commits, page by page."""
    return PageWalk(
        f"/v1/places/{place_id}/history", query(limit=limit), "entries", _entries.decode
    )


def verify(
    *, from_: int | None, to: int | None, head: SignedHead | None, projections: str | None
) -> Request:
    """GET the audit's verification (with a saved head: that the log still holds it)."""
    params = query(
        from_=from_,
        to=to,
        head_position=None if head is None else head.position,
        head_hash=None if head is None else head.hash,
        projections=projections,
    )
    return Request("GET", "/v1/audit/verify", params=params)


def export(*, known_at: When | None, fmt: str) -> Request:
    """GET the log up to a known position, as NDJSON or CSV."""
    return Request("GET", "/v1/export", params=query(known_at=known(known_at), format=fmt))


def front_csv(*, valid_at: When | None, known_at: When | None) -> Request:
    """GET the whole front at a valid time as CSV."""
    params = query(valid_at=valid_at, known_at=known(known_at), format="csv")
    return Request("GET", "/v1/state", params=params)


def live(
    *,
    after: int | None,
    last_event_id: str | None,
    place: str | None,
    type_: str | None,
    source: str | None,
) -> Request:
    """GET the live stream as Server-Sent Events, from ``after`` or after ``last_event_id``."""
    headers = {"accept": SSE}
    if last_event_id is not None:
        headers["last-event-id"] = last_event_id
    params = query(after=after, place=place, type_=type_, source=source)
    return Request("GET", "/v1/events/stream", params=params, headers=headers)


def resumed(request: Request, last_event_id: str | None) -> Request:
    """The live stream's request again, resuming after the last id received."""
    if last_event_id is None:
        return request
    return Request(
        request.method,
        request.path,
        params=request.params,
        headers={**request.headers, "last-event-id": last_event_id},
    )


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the position it is as of, its ETag, how many bytes."""

    position: int | None
    etag: str | None
    bytes: int
