"""From a reader's :class:`SourceRow` to events the log accepts: the place resolved, every
event through the wire contract. Pure; ``service.store.interop`` appends what this prepares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import msgspec

from contracts.events import event_decoder
from service.domain.errors import InvalidEvent
from service.domain.records import PreparedEvent, prepare_event
from service.domain.time import parse_instant
from service.domain.validation import field_of
from service.interop.places import Match, PlaceIndex
from service.interop.rows import PlaceRef, SourceRow

_encode = msgspec.json.Encoder().encode

#: A publication time before this year is a placeholder (UCDP's 1753-01-01), not a time.
EARLIEST_PUBLICATION_YEAR: Final = 1900


def implausible_publication(published_at: object, now: datetime | None) -> str | None:
    """Why ``published_at`` cannot be when a report was published (before 1900, or after
    ``now``, the import's time), or None when it can or cannot be read at all (the contract
    check names a malformed one)."""
    if not isinstance(published_at, str):
        return None
    try:
        moment, _ = parse_instant(published_at, "source.published_at")
    except InvalidEvent:
        return None
    if moment.year < EARLIEST_PUBLICATION_YEAR:
        return f"before {EARLIEST_PUBLICATION_YEAR}"
    if now is not None and moment > now:
        return f"after the import ({now.isoformat(timespec='seconds')})"
    return None


def _checked_publication(
    event: dict[str, Any], now: datetime | None, flags: list[str], flag_fields: list[str]
) -> dict[str, Any]:
    """``event`` without a ``source.published_at`` that cannot be a publication time (flagged):
    a sentinel or impossible date is never stored as when a report was published."""
    source = event.get("source")
    if not isinstance(source, dict):
        return event
    published = source.get("published_at")
    why = implausible_publication(published, now)
    if why is None:
        return event
    flag = f"source.published_at {published} is {why}: not stored as a publication time"
    if flag not in flags:
        flags.append(flag)
        flag_fields.append("source.published_at")
    return {**event, "source": {k: v for k, v in source.items() if k != "published_at"}}


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
    row: SourceRow, index: PlaceIndex, *, now: datetime | None = None
) -> tuple[tuple[PreparedEvent, ...], list[str], str | None] | Refused:
    """A mapped row's events with its place resolved, validated, and its flags with the
    columns (or event fields) they are about: ``place`` for a place matched by name alone.

    A ``source.published_at`` before 1900 or after ``now`` (the import's time) is left out
    and the row flagged (``source.published_at``)."""
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
        event = _checked_publication(event, now, flags, flag_fields)
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
