"""Valid time: turning an event's ``occurred`` into a half-open UTC interval.

A date is a UTC day. A datetime must carry its offset. The interval runs from the start of
the precision unit holding ``start`` to the end of the unit holding ``end`` (or ``start``):
a ``day`` event on 2017-06-03 covers [2017-06-03T00:00Z, 2017-06-04T00:00Z).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from contracts.events import Occurred, TimePrecision
from service.domain.errors import InvalidEvent

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
