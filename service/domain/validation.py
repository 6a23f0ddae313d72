"""Decoding request bodies into contract structs, with errors that name the field."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any, Final

import msgspec

from contracts.events import (
    SERVER_OWNED_FIELDS,
    Event,
    Expectation,
    PlaceMerge,
    PlaceUnmerge,
    SideRegistration,
    SourceRegistration,
    batch_decoder,
    event_decoder,
    peek_decoder,
    place_merge_decoder,
    place_unmerge_decoder,
    side_registration_decoder,
    side_registrations_decoder,
    source_registration_decoder,
    source_registrations_decoder,
)
from contracts.idempotency import keyed_event_id
from service.domain.errors import BatchTooLarge, InvalidEvent, MalformedBody, NestedTooDeep

_PATH: Final = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_NAMED: Final = re.compile(
    r"^Object (?:contains unknown|missing required) field `(?P<name>[^`]+)`$"
)
#: A surrogate escape (backslash-u D800 to DFFF): msgspec refuses an unpaired one as malformed.
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")
_TOP_LEVEL: Final = re.compile(r"^(?:events\[\d+\])?$")

MAX_DEPTH: Final = 32
"""How deeply arrays and objects may nest in a JSON body or an NDJSON line. The contract
needs 5 (a batch's ``events[i].place.aliases``); the parsers recurse once per level, so a
body nested a thousand deep would exhaust the stack (a RecursionError, a 500) before any
check of its shape could refuse it."""

#: A JSON string, escapes included; an unterminated one runs to the end (so no quote is
#: ever tried as the start of another, and the scan stays linear).
_JSON_STRING: Final = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKET: Final = bytes(b for b in range(256) if b not in b"[]{}")
#: +1 for an opening bracket, -1 for a closing one, by byte value.
_STEP: Final = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]


def too_deep(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON ``data`` nests arrays or objects more than ``limit`` deep (brackets
    inside strings aside), found without recursion and in linear time; data that is not JSON
    is measured as far as it reads. Most data has fewer brackets than ``limit`` in all, which
    two counts show."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    # Without escapes every quote opens or closes a string: a split is three times faster.
    escapes = b"\\" in data
    outside = _JSON_STRING.sub(b"", data) if escapes else b"".join(data.split(b'"')[::2])
    brackets = outside.translate(None, _NOT_BRACKET)
    return any(map(limit.__lt__, itertools.accumulate(map(_STEP.__getitem__, brackets))))


def _nested_too_deep(where: str | None) -> NestedTooDeep:
    return NestedTooDeep(
        f"the JSON nests arrays or objects more than {MAX_DEPTH} deep, which no event needs",
        field=where,
    )


def field_of(error: msgspec.DecodeError, data: bytes | None = None) -> tuple[str, str | None]:
    """A decoder error as (detail, field): the field as a dotted path such as ``place.lat``.

    msgspec reports where an error is only in its message (`` - at `$.place.lat` ``), so the
    path is read from there. Given the JSON ``data``, an unpaired surrogate escape
    (``"\\ud800"``, which msgspec refuses as malformed) is reported at the field holding it.
    """
    message = str(error)
    if not isinstance(error, msgspec.ValidationError):
        suspect = data is not None and _SURROGATE_ESCAPE.search(data) is not None
        where = _lone_surrogate(data) if data is not None and suspect else None
        if where is not None:
            return (
                f"{where} holds an unpaired surrogate escape (\\ud800-\\udfff), which is not text"
            ), where
        return f"malformed JSON: {message}", None
    path_match = _PATH.search(message)
    path = path_match.group("path") if path_match else ""
    detail = message[: path_match.start()] if path_match else message
    named = _NAMED.match(detail)
    if named:
        name = named.group("name")
        top_level = _TOP_LEVEL.match(path) is not None
        path = f"{path}.{name}" if path else name
        if "unknown field" in detail and top_level and name in SERVER_OWNED_FIELDS:
            detail = f"`{name}` is set by the server and cannot be sent"
    return (f"{detail} (at {path})" if path else detail), (path or None)


def _lone_surrogate(data: bytes) -> str | None:
    """The path of the first member of JSON ``data`` holding an unpaired surrogate escape
    (the stdlib json module decodes such escapes; msgspec refuses them), ``body`` for a
    top-level member name; None when there is none or the data is not JSON anyway."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    path = surrogate_path(document)
    return None if path is None else path or "body"


def _broken(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def surrogate_path(value: Any, path: str = "") -> str | None:
    """Where decoded JSON holds an unpaired surrogate (no UTF-8 text can): the dotted path of
    the first string holding one (``actor``, ``events[1].place.name``), or of the object whose
    member name holds one (``""`` at the top); None when there is none."""
    try:
        if isinstance(value, str):
            return path if _broken(value) else None
        if isinstance(value, list):
            for index, item in enumerate(value):
                found = surrogate_path(item, f"{path}[{index}]")
                if found is not None:
                    return found
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and _broken(key):
                    return path
                found = surrogate_path(item, f"{path}.{key}" if path else str(key))
                if found is not None:
                    return found
    except RecursionError:
        return None
    return None


def _invalid(error: msgspec.DecodeError, body: bytes | None = None) -> InvalidEvent | MalformedBody:
    detail, where = field_of(error, body)
    if where is None and not isinstance(error, msgspec.ValidationError):
        return MalformedBody(detail)
    return InvalidEvent(detail, field=where)


def decode_events(body: bytes, max_batch: int) -> tuple[list[Event], tuple[Expectation, ...], bool]:
    """A POST body: one event, or ``{"events": [...], "expect": [...]}`` (then ``True``).

    The common case, one valid event, is decoded once; only a body that is not one looks
    further (a batch, malformed JSON, or an event with something wrong). A body nested more
    than :data:`MAX_DEPTH` deep is refused before any parser sees it (NestedTooDeep).
    """
    if too_deep(body):
        raise _nested_too_deep("body")
    try:
        return [event_decoder.decode(body)], (), False
    except msgspec.ValidationError as error:
        as_event = error
    except msgspec.DecodeError as error:
        raise _invalid(error, body) from None
    try:
        peek = peek_decoder.decode(body)
    except msgspec.ValidationError:
        # Not an object. Malformed JSON is still a 400: check the syntax before the shape.
        try:
            msgspec.json.decode(body)
        except msgspec.DecodeError as error:
            raise _invalid(error, body) from None
        raise _invalid(as_event) from None
    except msgspec.DecodeError as error:
        raise _invalid(error, body) from None
    if len(peek.events) == 0:
        raise _invalid(as_event) from None
    try:
        batch = batch_decoder.decode(body)
    except msgspec.DecodeError as error:
        raise _invalid(error, body) from None
    if len(batch.events) > max_batch:
        raise BatchTooLarge(
            f"the batch holds {len(batch.events)} events; at most {max_batch} are "
            "accepted in one batch (use NDJSON for bulk imports)",
            field="events",
        )
    return batch.events, batch.expect, True


def decode_line(line: bytes) -> Event:
    """One NDJSON line as an event; InvalidEvent naming the field, MalformedBody for a line
    that is not JSON, NestedTooDeep for one nested more than :data:`MAX_DEPTH` deep."""
    if too_deep(line):
        raise _nested_too_deep(None)
    try:
        event: Event = event_decoder.decode(line)
    except msgspec.DecodeError as error:
        detail, where = field_of(error, line)
        raise InvalidEvent(detail, field=where) from None
    return event


def decode_sides(body: bytes) -> list[SideRegistration]:
    """A ``POST /v1/sides`` body: one side's entry, or a registry file (``{"sides": [...]}``);
    InvalidEvent naming the field, MalformedBody for a body that is not JSON."""
    if too_deep(body):
        raise _nested_too_deep("body")
    try:
        peek = _sides_peek.decode(body)
    except msgspec.DecodeError as error:
        raise _invalid(error, body) from None
    try:
        if len(peek.sides) == 0:
            return [side_registration_decoder.decode(body)]
        return side_registrations_decoder.decode(body).sides
    except msgspec.DecodeError as error:
        raise _invalid(error, body) from None


def decode_sources(body: bytes) -> list[SourceRegistration]:
    """A ``POST /v1/sources`` body: one source's entry, or a registry file
    (``{"sources": [...]}``); InvalidEvent naming the field, MalformedBody for a body that is
    not JSON."""
    if too_deep(body):
        raise _nested_too_deep("body")
    try:
        peek = _sources_peek.decode(body)
    except msgspec.DecodeError as error:
        raise _invalid(error, body) from None
    try:
        if len(peek.sources) == 0:
            return [source_registration_decoder.decode(body)]
        return source_registrations_decoder.decode(body).sources
    except msgspec.DecodeError as error:
        raise _invalid(error, body) from None


def decode_merge(body: bytes) -> PlaceMerge:
    """A ``POST /v1/places/{id}/merges`` body; InvalidEvent naming the field, MalformedBody
    for a body that is not JSON."""
    if too_deep(body):
        raise _nested_too_deep("body")
    try:
        return place_merge_decoder.decode(body)
    except msgspec.DecodeError as error:
        raise _invalid(error, body) from None


def decode_unmerge(body: bytes) -> PlaceUnmerge:
    """A ``POST /v1/places/{id}/unmerges`` body; InvalidEvent naming the field,
    MalformedBody for a body that is not JSON."""
    if too_deep(body):
        raise _nested_too_deep("body")
    try:
        return place_unmerge_decoder.decode(body)
    except msgspec.DecodeError as error:
        raise _invalid(error, body) from None


class _SourcesPeek(msgspec.Struct):
    """Just enough of a body to tell a registry file from one source's entry."""

    sources: msgspec.Raw = msgspec.Raw()


_sources_peek: Final = msgspec.json.Decoder(_SourcesPeek)


class _SidesPeek(msgspec.Struct):
    """Just enough of a body to tell a registry file from one side's entry."""

    sides: msgspec.Raw = msgspec.Raw()


_sides_peek: Final = msgspec.json.Decoder(_SidesPeek)


def keyed(event: Event, key: str | None, index: int) -> Event:
    """The event with the id ``key`` derives for ``index`` when it has none
    (``contracts.idempotency``); as it is without a key or with an id of its own."""
    if key is None or event.id is not None:
        return event
    return msgspec.structs.replace(event, id=keyed_event_id(key, index))
