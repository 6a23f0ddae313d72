"""Valid time: turning an event's ``occurred`` into a half-open UTC interval.

A date is a UTC day. A datetime must carry its offset. The interval runs from the start of
the precision unit holding ``start`` to the end of the unit holding ``end`` (or ``start``):
a ``day`` event on 2017-06-03 covers [2017-06-03T00:00Z, 2017-06-04T00:00Z).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Final

from contracts.events import Occurred, TimePrecision
from service.domain.errors import InvalidEvent

# The text of an instant, as a regular expression: exactly what parse_instant accepts, so
# that a pattern built from it (a stored record's check, a format reader's, the OpenAPI
# document's) never refuses a value the parser takes nor lets through one it refuses.
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

EXACT_WIDTH = timedelta(microseconds=1)


def parse_instant(text: str, field: str) -> tuple[datetime, bool]:
    """Parse a date or an offset-carrying datetime; return it in UTC and whether it was a date."""
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidEvent(
                f"{field} is not a date (YYYY-MM-DD): {text!r}", field=field
            ) from None
        return datetime(day.year, day.month, day.day, tzinfo=UTC), True
    if len(text) < 11 or text[10] not in "Tt ":
        raise InvalidEvent(
            f"{field} is neither a date (YYYY-MM-DD) nor a datetime (YYYY-MM-DDThh:mm:ssZ): "
            f"{text!r}",
            field=field,
        )
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidEvent(
            f"{field} is neither a date nor an ISO 8601 datetime: {text!r}", field=field
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidEvent(
            f"{field} is a datetime without a UTC offset: {text!r}; add 'Z' or '+hh:mm'",
            field=field,
        )
    try:
        return moment.astimezone(UTC), False
    except OverflowError:
        raise InvalidEvent(
            f"{field} is outside the representable range of dates once in UTC: {text!r}",
            field=field,
        ) from None


def _unit_start(moment: datetime, precision: TimePrecision) -> datetime:
    if precision == "exact":
        return moment
    if precision == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if precision == "day":
        return day
    if precision == "week":
        return day - timedelta(days=day.weekday())
    if precision == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def _unit_end(moment: datetime, precision: TimePrecision) -> datetime:
    start = _unit_start(moment, precision)
    if precision == "exact":
        return start + EXACT_WIDTH
    if precision == "hour":
        return start + timedelta(hours=1)
    if precision == "day":
        return start + timedelta(days=1)
    if precision == "week":
        return start + timedelta(days=7)
    if precision == "month":
        return (start + timedelta(days=32)).replace(day=1)
    return start.replace(year=start.year + 1)


@functools.lru_cache(maxsize=8192)
def valid_interval(occurred: Occurred) -> tuple[datetime, datetime]:
    """The half-open UTC interval [from, to) that ``occurred`` covers.

    Cached: reports cluster on the same days, and ``Occurred`` is frozen (hashable).
    """
    precision = occurred.precision
    start, _ = parse_instant(occurred.start, "occurred.start")
    valid_from = _bounded(_unit_start, start, precision, "occurred.start")
    valid_to = _bounded(_unit_end, start, precision, "occurred.start")
    if occurred.end is not None:
        end, end_is_date = parse_instant(occurred.end, "occurred.end")
        valid_to = _bounded(_unit_end, end, precision, "occurred.end")
        # An end given as a date means that whole day, so it may hold a datetime start.
        if end < start and (not end_is_date or end + timedelta(days=1) <= start):
            raise InvalidEvent(
                f"occurred.end ({occurred.end}) is before occurred.start ({occurred.start})",
                field="occurred.end",
            )
    return valid_from, valid_to


def _bounded(
    unit: Callable[[datetime, TimePrecision], datetime],
    moment: datetime,
    precision: TimePrecision,
    field: str,
) -> datetime:
    try:
        return unit(moment, precision)
    except (OverflowError, ValueError):
        raise InvalidEvent(
            f"{field} is outside the representable range of dates", field=field
        ) from None


def utc_text(moment: datetime) -> str:
    """A UTC timestamp as Frontline writes it: always microseconds, always 'Z'."""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc.strftime('%m-%dT%H:%M:%S.%f')}Z"
