"""Query parameters of the front: valid times, known positions, bounding boxes. Pure."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from contracts.idempotency import MAX_KEY_LENGTH
from service.domain.errors import InvalidEvent, InvalidParameter
from service.domain.time import parse_instant, utc_text


def valid_time(text: str, field: str) -> datetime:
    """A valid time: a date (its first instant, UTC) or a datetime with an offset."""
    try:
        moment, _ = parse_instant(text, field)
    except InvalidEvent as error:
        raise InvalidParameter(error.detail, field=field) from None
    return moment


_DIGITS: Final = re.compile(r"^[0-9]{1,30}$")
MAX_POSITION: Final = 2**63 - 1
STATUSES: Final = ("controlled", "encircled", "contested", "unknown")
FORMATS: Final = ("json", "geojson", "csv")

# The documented shapes of query parameters (the OpenAPI document states them and Litestar
# enforces them before a handler runs), each exactly what the parsers below accept, so that
# a value the document allows is never refused and a value it refuses is never taken.
# Patterns end with `$(?!\n)`, as in contracts/events.py (Python's `$` also matches before a
# final newline).
_YEAR: Final = r"(?:1[0-9]{3}|[2-8][0-9]{3}|9[0-8][0-9]{2})"
"""1000-9899: a year that stays a year once any offset has moved it to UTC."""
_MONTH_DAY: Final = (
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
"""Days that exist in every year."""
_LEAP_YEAR: Final = (
    r"(?:(?:1[0-9]|[2-8][0-9]|9[0-8])(?:0[48]|[2468][048]|[13579][26])"
    r"|(?:1[26]|[2468][048]|[3579][26])00)"
)
"""The leap years among them: divisible by 4, and by 400 when by 100."""
_DATE: Final = f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
_CLOCK: Final = r"[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
_OFFSET: Final = r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
INSTANT: Final = f"{_DATE}(?:{_CLOCK}{_OFFSET})?"
"""A date (YYYY-MM-DD), or a datetime with its UTC offset."""
INSTANT_PATTERN: Final = f"^{INSTANT}$(?!\\n)"
OPTIONAL_INSTANT_PATTERN: Final = f"^(?:{INSTANT})?$(?!\\n)"
"""An instant, or empty (the default)."""
KNOWN_AT_PATTERN: Final = f"^(?:position:[0-9]{{1,30}}|{INSTANT})?$(?!\\n)"
"""``position:N`` or an instant, or empty (the latest)."""
SLUG_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]*$(?!\n)"
"""A place or side id (contracts.events.Slug)."""
CURSOR_PATTERN: Final = r"^(?:[a-z0-9][a-z0-9_-]*)?$(?!\n)"
"""A page cursor: the last place id of the previous page, or empty (the first page)."""
CHANGES_CURSOR_PATTERN: Final = f"^(?:[a-z0-9][a-z0-9_-]*@{INSTANT})?$(?!\\n)"
"""A page cursor of the front's changes: ``place@instant``, the last change of the previous
page (the instant as Frontline writes it, in UTC), or empty (the first page)."""
TEXT_PATTERN: Final = r"^[^\x00-\x1f\x7f]+$(?!\n)"
"""One line of text without control characters (contracts.events.Text)."""
UUID_PATTERN: Final = (
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$(?!\n)"
)
_LON: Final = r"-?(?:180(?:\.0{1,12})?|(?:1[0-7][0-9]|[1-9]?[0-9])(?:\.[0-9]{1,12})?)"
_LAT: Final = r"-?(?:90(?:\.0{1,12})?|[1-8]?[0-9](?:\.[0-9]{1,12})?)"
BBOX_PATTERN: Final = f"^(?:{_LON},{_LAT},{_LON},{_LAT})?$(?!\\n)"
"""west,south,east,north in degrees, each in range, at most 12 decimals; or empty."""


def words_pattern(words: tuple[str, ...] | list[str]) -> str:
    """A pattern for exactly one of these words."""
    return "^(?:" + "|".join(re.escape(w) for w in words) + ")$(?!\\n)"


def one_of(value: str | None, allowed: tuple[str, ...], field: str) -> str | None:
    """A parameter that takes one of a few words (or is absent)."""
    if value is None or value in allowed:
        return value
    raise InvalidParameter(
        f"{field} must be one of {', '.join(allowed)}, not {value!r}", field=field
    )


def required(value: str | None, field: str) -> str:
    """A parameter that must be given."""
    if value is None or value == "":
        raise InvalidParameter(f"{field} is required", field=field)
    return value


@dataclass(frozen=True, slots=True)
class KnownAt:
    """``known_at``: a timestamp, or ``position:N``."""

    position: int | None = None
    time: datetime | None = None


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


@dataclass(frozen=True, slots=True)
class BBox:
    """A bounding box in degrees: west, south, east, north."""

    west: float
    south: float
    east: float
    north: float


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


@dataclass(frozen=True, slots=True)
class ChangeCursor:
    """Where a page of the front's changes ends: a place and the valid time of its change."""

    place: str
    at: datetime


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


def change_cursor_text(cursor: ChangeCursor) -> str:
    """The ``next_cursor`` that continues after ``cursor``."""
    return f"{cursor.place}@{utc_text(cursor.at)}"


_SF_CHAR: Final = r"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\\\"])"
IDEMPOTENCY_KEY_PATTERN: Final = (
    f'^(?:"{_SF_CHAR}{{1,{MAX_KEY_LENGTH}}}"'
    f"|[\\x21\\x23-\\x7e][\\x20-\\x7e]{{0,{MAX_KEY_LENGTH - 1}}})$(?!\\n)"
)
"""An ``Idempotency-Key`` header: a Structured Field String (``"..."``, with ``\\"`` and
``\\\\`` escapes; the draft's form) or, as many clients send it, the bare key; either way 1
to 255 printable ASCII characters."""
_SF_ESCAPE: Final = re.compile(r"\\(.)")


def idempotency_key(value: str | None) -> str | None:
    """The key an ``Idempotency-Key`` header holds (unquoted, unescaped), or None."""
    if value is None:
        return None
    if not re.search(IDEMPOTENCY_KEY_PATTERN, value):
        raise InvalidParameter(
            "Idempotency-Key must be 1 to 255 printable ASCII characters, as a quoted "
            'Structured Field String (Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324")',
            field="idempotency-key",
        )
    return _SF_ESCAPE.sub(r"\1", value[1:-1]) if value.startswith('"') else value
