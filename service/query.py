"""What a read asks for: as known at which commit, inside which box, after which change.

The parsers here turn text into these values, with the same errors wherever the text comes
from: the API's query parameters (``service.api.parameters`` declares their documented shapes
and calls these) and the CLI's options. The projections and the export read with them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from service.domain.errors import InvalidEvent
from service.domain.time import parse_instant, utc_text
from service.errors import InvalidParameter

MAX_POSITION: Final = 2**63 - 1
"""The last log position there can be (a bigint)."""

_DIGITS: Final = re.compile(r"^[0-9]{1,30}$")


@dataclass(frozen=True, slots=True)
class KnownAt:
    """``known_at``: a timestamp, or ``position:N``."""

    position: int | None = None
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class BBox:
    """A bounding box in degrees: west, south, east, north."""

    west: float
    south: float
    east: float
    north: float


@dataclass(frozen=True, slots=True)
class ChangeCursor:
    """Where a page of the front's changes ends: a place and the valid time of its change."""

    place: str
    at: datetime


def change_cursor_text(cursor: ChangeCursor) -> str:
    """The ``next_cursor`` that continues after ``cursor``."""
    return f"{cursor.place}@{utc_text(cursor.at)}"


def valid_time(text: str, field: str) -> datetime:
    """A valid time: a date (its first instant, UTC) or a datetime with an offset."""
    try:
        moment, _ = parse_instant(text, field)
    except InvalidEvent as error:
        raise InvalidParameter(error.detail, field=field) from None
    return moment


def position(text: str, name: str) -> int:
    """A log position given as text (a header, say): digits, at most MAX_POSITION."""
    if not _DIGITS.match(text) or int(text) > MAX_POSITION:
        raise InvalidParameter(f"{name} {text[:40]!r} is not a log position", field=name)
    return int(text)


def known_at(text: str | None) -> KnownAt:
    """Parse ``known_at``; absent means the latest commit."""
    if text is None or text == "":
        return KnownAt()
    if text.startswith("position:"):
        number = text.removeprefix("position:")
        if not _DIGITS.match(number):
            raise InvalidParameter(
                f"known_at {text!r}: position:N takes a whole number N >= 0", field="known_at"
            )
        # Past the last position means the latest; cap it to what a bigint holds.
        return KnownAt(position=min(int(number), MAX_POSITION))
    return KnownAt(time=valid_time(text, "known_at"))


def bbox(text: str | None) -> BBox | None:
    """Parse ``bbox=west,south,east,north`` (GeoJSON order: lon, lat, lon, lat)."""
    if text is None or text == "":
        return None
    parts = text.split(",")
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise InvalidParameter(
            f"bbox {text!r} is not four numbers: west,south,east,north", field="bbox"
        ) from None
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        raise InvalidParameter("bbox holds a number that is not finite", field="bbox")
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InvalidParameter(
            f"bbox {text!r} must satisfy -180 <= west <= east <= 180 and "
            "-90 <= south <= north <= 90",
            field="bbox",
        )
    return BBox(west, south, east, north)


def change_cursor(text: str | None) -> ChangeCursor | None:
    """Parse ``cursor=place@instant`` of ``GET /v1/state/changes``; absent or empty: None."""
    if text is None or text == "":
        return None
    place, sep, instant = text.partition("@")
    if not sep or not place:
        raise InvalidParameter(
            f"cursor {text[:80]!r} is not a next_cursor (place@instant)", field="cursor"
        )
    return ChangeCursor(place=place, at=valid_time(instant, "cursor"))
