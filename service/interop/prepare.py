"""From a reader's :class:`SourceRow` to events the log accepts: the place resolved, every
event through the wire contract. Pure; ``service.store.interop`` appends what this prepares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from contracts.events import event_decoder
from service.domain.errors import InvalidEvent
from service.domain.records import PreparedEvent, prepare_event
from service.domain.validation import field_of
from service.interop.places import Match, PlaceIndex
from service.interop.rows import PlaceRef, SourceRow

_encode = msgspec.json.Encoder().encode


def place_of(ref: PlaceRef, match: Match) -> dict[str, Any]:
    """The contract ``place`` of an imported event: the matched id and what the source said."""
    place: dict[str, Any] = {"id": match.place_id, "name": ref.name}
    for key in ("kind", "lat", "lon", "precision"):
        value = getattr(ref, key)
        if value is not None:
            place[key] = value
    return place


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a row is not imported, and the column or event field it is about."""

    reason: str
    field: str | None = None


def columns(fields: Iterable[str]) -> str | None:
    """The ``field`` of a rejected or flagged row: the columns it is about, joined with ','
    (``low,best,high``), or None when the reader named none."""
    return ",".join(dict.fromkeys(f for f in fields if f)) or None


def prepare_row(
    row: SourceRow, index: PlaceIndex
) -> tuple[tuple[PreparedEvent, ...], list[str], str | None] | Refused:
    """A mapped row's events with its place resolved, validated, and its flags with the
    columns (or event fields) they are about: ``place`` for a place matched by name alone."""
    if row.error is not None:
        return Refused(row.error, columns(row.fields))
    if row.place is None or not row.events:
        return Refused("the record maps to no event")
    match = index.resolve(row.place)
    place = place_of(row.place, match)
    prepared: list[PreparedEvent] = []
    flags = list(row.flags)
    flag_fields = list(row.fields)
    if match.flag is not None:
        flags.append(match.flag)
        flag_fields.append("place")
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
    return tuple(prepared), flags, columns(flag_fields) if flags else None
