"""Decoding request bodies into contract structs, with errors that name the field."""

from __future__ import annotations

import re
from typing import Final

import msgspec

from contracts.events import (
    SERVER_OWNED_FIELDS,
    Event,
    Expectation,
    batch_decoder,
    event_decoder,
    peek_decoder,
)
from service.domain.errors import BatchTooLarge, InvalidEvent, MalformedBody

_PATH: Final = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_NAMED: Final = re.compile(
    r"^Object (?:contains unknown|missing required) field `(?P<name>[^`]+)`$"
)
_TOP_LEVEL: Final = re.compile(r"^(?:events\[\d+\])?$")


def field_of(error: msgspec.DecodeError) -> tuple[str, str | None]:
    """A decoder error as (detail, field): the field as a dotted path such as ``place.lat``.

    msgspec reports where an error is only in its message (`` - at `$.place.lat` ``), so the
    path is read from there.
    """
    message = str(error)
    if not isinstance(error, msgspec.ValidationError):
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


def _invalid(error: msgspec.DecodeError) -> InvalidEvent | MalformedBody:
    detail, where = field_of(error)
    if not isinstance(error, msgspec.ValidationError):
        return MalformedBody(detail)
    return InvalidEvent(detail, field=where)


def decode_events(body: bytes, max_batch: int) -> tuple[list[Event], tuple[Expectation, ...], bool]:
    """A POST body: one event, or ``{"events": [...], "expect": [...]}`` (then ``True``).

    The common case, one valid event, is decoded once; only a body that is not one looks
    further (a batch, malformed JSON, or an event with something wrong).
    """
    try:
        return [event_decoder.decode(body)], (), False
    except msgspec.ValidationError as error:
        as_event = error
    except msgspec.DecodeError as error:
        raise _invalid(error) from None
    try:
        peek = peek_decoder.decode(body)
    except msgspec.ValidationError:
        # Not an object. Malformed JSON is still a 400: check the syntax before the shape.
        try:
            msgspec.json.decode(body)
        except msgspec.DecodeError as error:
            raise _invalid(error) from None
        raise _invalid(as_event) from None
    except msgspec.DecodeError as error:
        raise _invalid(error) from None
    if len(peek.events) == 0:
        raise _invalid(as_event) from None
    try:
        batch = batch_decoder.decode(body)
    except msgspec.DecodeError as error:
        raise _invalid(error) from None
    if len(batch.events) > max_batch:
        raise BatchTooLarge(
            f"the batch holds {len(batch.events)} events; at most {max_batch} are "
            "accepted in one batch (use NDJSON for bulk imports)",
            field="events",
        )
    return batch.events, batch.expect, True
