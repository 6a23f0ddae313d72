"""From a client's event to the stored record and its place in the hash chain (DESIGN 6).

The stored record is the client's event plus the server's fields, as RFC 8785 canonical JSON,
in which the client payload appears only as its SHA-256 digest, so that a later redaction of
payload text keeps the chain valid. ``hash = SHA-256(prev_hash || record)``, over the bytes
exactly as stored.
"""

from __future__ import annotations

import functools
import hashlib
import re
import typing
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import msgspec

from contracts.events import (
    PLACE_STREAM,
    SIDE_STREAM,
    SOURCE_STREAM,
    Casualties,
    Event,
    PlaceMerged,
    PlaceMergeRetracted,
    RegistryEvent,
    SideRegistered,
    SourceRegistered,
    event_type,
)
from service.domain.canonical import canonical_struct
from service.domain.errors import InvalidEvent
from service.domain.time import INSTANT_PATTERN, parse_instant, valid_interval

T = TypeVar("T", bound=msgspec.Struct)

GENESIS_HASH: Final = bytes(32)
RECORD_VERSION: Final = 1

_encode_sorted = msgspec.json.Encoder(order="sorted").encode


def source_key(name: str) -> str:
    """The identity of a source: its name without case or whitespace (DESIGN 4, rule 5).

    The one definition, used by the store (retractions, the source filter) and the projection.
    """
    return "".join(name.split()).casefold()


class PreparedEvent(msgspec.Struct, frozen=True, gc=False):
    """A validated event with everything the store needs derived from it once.

    A frozen msgspec Struct rather than a frozen dataclass: built once per event on the
    ingest path, where a dataclass's ``object.__setattr__`` per field shows in profiles; it
    holds no reference cycles, so the garbage collector need not track it.
    """

    event: Event | RegistryEvent
    """The event; a registry event (``side_registered``) has no place, its stream is its
    registry's (``side:<id>``)."""
    id: uuid.UUID
    type: str
    place_id: str
    """The stream the event belongs to: its place's id, or a registry stream."""
    source_key: str
    valid_from: datetime
    valid_to: datetime
    payload: bytes
    payload_digest: bytes
    flags: tuple[str, ...]


def casualty_flags(figures: Casualties | None) -> tuple[str, ...]:
    """The bounds a casualty claim breaks (``low <= killed <= high``): stored and listed as
    given, never repaired (DESIGN 3)."""
    if figures is None:
        return ()
    flags: list[str] = []
    low, best, high = figures.low, figures.killed, figures.high
    if low is not None and best is not None and low > best:
        flags.append("casualties.low exceeds casualties.killed")
    if best is not None and high is not None and best > high:
        flags.append("casualties.killed exceeds casualties.high")
    if low is not None and high is not None and low > high:
        flags.append("casualties.low exceeds casualties.high")
    return tuple(flags)


def _with_default_objects(value: T) -> T:
    """The same struct, with every field equal to its default holding the default object.

    ``omit_defaults`` leaves a field out only when it holds the default object itself, so a
    client that spells out a default (``"alignment": "neutral"``) would otherwise get another
    payload, and another digest, than one that leaves it out.
    """
    changes: dict[str, Any] = {}
    text_defaults, nested = _default_plan(type(value))
    for name, default in text_defaults:
        current = getattr(value, name)
        if current is not default and current == default:
            changes[name] = default
    for name in nested:
        current = getattr(value, name)
        if isinstance(current, msgspec.Struct):
            normal = _with_default_objects(current)
            if normal is not current:
                changes[name] = normal
    return msgspec.structs.replace(value, **changes) if changes else value


@functools.cache
def _default_plan(
    cls: type[msgspec.Struct],
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """A struct class's text fields with a default, and its fields that may hold a struct.

    Worked out once per class: ``msgspec.structs.fields`` evaluates annotations on every call.
    (Defaults of other types are singletons or compared by value, so omit_defaults sees them.)
    """
    specs = msgspec.structs.fields(cls)
    # A Literal's values come back from the decoder as the very objects of the annotation,
    # so only free text can hold an equal but distinct default.
    text = tuple(
        (s.name, s.default)
        for s in specs
        if isinstance(s.default, str) and typing.get_origin(s.type) is not typing.Literal
    )
    nested = tuple(s.name for s in specs if any(any(_default_plan(c)) for c in _structs_in(s.type)))
    return text, nested


def _structs_in(annotation: Any) -> list[type[msgspec.Struct]]:
    """The struct classes a field's annotation may hold directly (not inside collections)."""
    if isinstance(annotation, type):
        return [annotation] if issubclass(annotation, msgspec.Struct) else []
    if typing.get_origin(annotation) in (tuple, list, dict):
        return []
    return [c for arg in typing.get_args(annotation) for c in _structs_in(arg)]


_INSTANT: Final = re.compile(INSTANT_PATTERN)
"""The times a client may send, as the OpenAPI document states them (service.api.openapi);
events already stored are read back whatever form they had."""


def prepare_event(event: Event) -> PreparedEvent:
    """Check what the decoder cannot and derive the stored payload. Raises InvalidEvent."""
    event = _with_default_objects(event)
    if event.id is None:
        event = msgspec.structs.replace(event, id=uuid.uuid4())
    assert event.id is not None  # for the type checker: set just above
    place = event.place
    if (place.lat is None) != (place.lon is None):
        missing = "place.lon" if place.lon is None else "place.lat"
        raise InvalidEvent(
            f"{missing} is required when the other coordinate is given", field=missing
        )
    for value, name in (
        (event.occurred.start, "occurred.start"),
        (event.occurred.end, "occurred.end"),
        (event.source.published_at, "source.published_at"),
    ):
        if value is not None and not _INSTANT.search(value):
            raise InvalidEvent(
                f"{name} is neither a date (YYYY-MM-DD, a year from 1000 to 9899) nor a "
                f"datetime with its offset (YYYY-MM-DDThh:mm[:ss[.ffffff]]Z or +hh:mm): "
                f"{value[:40]!r}",
                field=name,
            )
    valid_from, valid_to = valid_interval(event.occurred)
    if event.source.published_at is not None:
        parse_instant(event.source.published_at, "source.published_at")
    seen: dict[tuple[uuid.UUID, str], int] = {}
    for index, link in enumerate(event.relates_to):
        if link.event == event.id:
            raise InvalidEvent("an event cannot link to itself", field=f"relates_to[{index}].event")
        first = seen.setdefault((link.event, link.relation), index)
        if first != index:
            # The links are a set (event_links holds each once): a repeat would say nothing
            # more, and the store would refuse it.
            raise InvalidEvent(
                f"relates_to[{index}] repeats relates_to[{first}] ({link.relation} {link.event})",
                field=f"relates_to[{index}]",
            )
    # The contract's only floats are the place's coordinates.
    payload = canonical_struct(event, (place.lat, place.lon))
    return PreparedEvent(
        event=event,
        id=event.id,
        type=event_type(event),
        place_id=place.id,
        source_key=source_key(event.source.name),
        valid_from=valid_from,
        valid_to=valid_to,
        payload=payload,
        payload_digest=hashlib.sha256(payload).digest(),
        flags=casualty_flags(event.casualties),
    )


#: The valid interval a registry event is stored with (the log's columns need one): the
#: first microsecond of 1970. A registry event has no valid time: it applies from its
#: position on to every valid time; readers of valid times leave registry streams out.
REGISTRY_VALID_FROM: Final = datetime(1970, 1, 1, tzinfo=UTC)
REGISTRY_VALID_TO: Final = REGISTRY_VALID_FROM + timedelta(microseconds=1)


def prepare_side(event: SideRegistered) -> PreparedEvent:
    """A side registry event ready for the log, in the side's stream."""
    return _prepare_registry(event)


def registry_columns(event: RegistryEvent) -> tuple[str, str]:
    """The stream and the ``source_key`` column a registry event is stored with."""
    if isinstance(event, SideRegistered):
        return SIDE_STREAM + event.side, ""
    if isinstance(event, SourceRegistered):
        key = source_key(event.source)
        return SOURCE_STREAM + key, key
    return PLACE_STREAM + event.merged, ""


def prepare_merge(event: PlaceMerged | PlaceMergeRetracted) -> PreparedEvent:
    """A merge (or its retraction) ready for the log, in the merged place's registry stream
    ``place:<merged>``."""
    if event.place == event.merged:
        raise InvalidEvent(
            f"a place cannot be merged into itself ({event.place!r})", field="merged"
        )
    return _prepare_registry(event)


def prepare_source(event: SourceRegistered) -> PreparedEvent:
    """A source registry event ready for the log, in the source's stream (its key)."""
    return _prepare_registry(event)


def _prepare_registry(event: RegistryEvent) -> PreparedEvent:
    """A registry event ready for the log: an id (new when it has none), its canonical
    payload, its stream and ``source_key`` (:func:`registry_columns`), and the registry's
    valid interval."""
    event = _with_default_objects(event)
    if event.id is None:
        event = msgspec.structs.replace(event, id=uuid.uuid4())
    assert event.id is not None  # for the type checker: set just above
    payload = canonical_struct(event, ())
    stream, key = registry_columns(event)
    return PreparedEvent(
        event=event,
        id=event.id,
        type=str(type(event).__struct_config__.tag),
        place_id=stream,
        source_key=key,
        valid_from=REGISTRY_VALID_FROM,
        valid_to=REGISTRY_VALID_TO,
        payload=payload,
        payload_digest=hashlib.sha256(payload).digest(),
        flags=(),
    )


def build_record(
    prepared: PreparedEvent,
    *,
    position: int,
    place_version: int,
    recorded_at: str,
    commit_position: int,
    submitter: str | None,
) -> bytes:
    """The canonical record of one event as stored and hashed.

    ``recorded_at`` is the commit's time as :func:`~service.domain.time.utc_text` writes it
    (one commit, one time: the caller formats it once).
    """
    # ASCII keys, integers and strings: msgspec's sorted output is already RFC 8785.
    return _encode_sorted(
        {
            "commit_position": commit_position,
            "id": str(prepared.id),
            "payload_sha256": prepared.payload_digest.hex(),
            "place": prepared.place_id,
            "place_version": place_version,
            "position": position,
            "recorded_at": recorded_at,
            "submitter": submitter,
            "type": prepared.type,
            "v": RECORD_VERSION,
        }
    )


def chain_hash(prev_hash: bytes, record: bytes) -> bytes:
    """SHA-256 over the previous hash and the record bytes."""
    return hashlib.sha256(prev_hash + record).digest()
