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

# What each kind of parameter takes, in words: every refusal of a parameter says
# "<name>: expected <this>, got '<value>'" (invalid_parameter), never a pattern.
INSTANT_TEXT: Final = (
    "a date (YYYY-MM-DD) or an RFC 3339 time with an offset (2017-06-05T10:00:00Z)"
)
KNOWN_AT_TEXT: Final = f"position:N (a whole number N >= 0), or {INSTANT_TEXT}"
POSITION_TEXT: Final = "a log position (a whole number from 0 to 9223372036854775807)"
BBOX_TEXT: Final = (
    "west,south,east,north in degrees (37,35,39,37), with -180 <= west <= east <= 180 "
    "and -90 <= south <= north <= 90, at most 12 decimals"
)
CHANGES_CURSOR_TEXT: Final = (
    "the next_cursor of the previous page (place@instant, such as "
    "sy-maskanah@2017-06-03T00:00:00.000000Z), or empty"
)


def invalid_parameter(name: str, expected: str, given: str | None) -> InvalidParameter:
    """The one way a parameter is refused: its name, what it takes in words, what it got
    (cut to 80 characters); ``given`` None: it was missing."""
    got = "nothing" if given is None else repr(given[:80])
    return InvalidParameter(f"{name}: expected {expected}, got {got}", field=name)


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
    except InvalidEvent:
        raise invalid_parameter(field, INSTANT_TEXT, text) from None
    return moment


def position(text: str, name: str) -> int:
    """A log position given as text (a header, say): digits, at most MAX_POSITION."""
    if not _DIGITS.match(text) or int(text) > MAX_POSITION:
        raise invalid_parameter(name, POSITION_TEXT, text)
    return int(text)


def known_at(text: str | None) -> KnownAt:
    """Parse ``known_at``; absent means the latest commit."""
    if text is None or text == "":
        return KnownAt()
    if text.startswith("position:"):
        number = text.removeprefix("position:")
        if not _DIGITS.match(number):
            raise invalid_parameter("known_at", KNOWN_AT_TEXT, text)
        # Past the last position means the latest; cap it to what a bigint holds.
        return KnownAt(position=min(int(number), MAX_POSITION))
    try:
        return KnownAt(time=valid_time(text, "known_at"))
    except InvalidParameter:
        raise invalid_parameter("known_at", KNOWN_AT_TEXT, text) from None


def bbox(text: str | None) -> BBox | None:
    """Parse ``bbox=west,south,east,north`` (GeoJSON order: lon, lat, lon, lat)."""
    if text is None or text == "":
        return None
    parts = text.split(",")
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise invalid_parameter("bbox", BBOX_TEXT, text) from None
    if not all(math.isfinite(v) for v in (west, south, east, north)) or not (
        -180 <= west <= east <= 180 and -90 <= south <= north <= 90
    ):
        raise invalid_parameter("bbox", BBOX_TEXT, text)
    return BBox(west, south, east, north)


def change_cursor(text: str | None) -> ChangeCursor | None:
    """Parse ``cursor=place@instant`` of ``GET /v1/state/changes``; absent or empty: None."""
    if text is None or text == "":
        return None
    place, sep, instant = text.partition("@")
    if not sep or not place:
        raise invalid_parameter("cursor", CHANGES_CURSOR_TEXT, text)
    try:
        return ChangeCursor(place=place, at=valid_time(instant, "cursor"))
    except InvalidParameter:
        raise invalid_parameter("cursor", CHANGES_CURSOR_TEXT, text) from None
