"""Valid time: ``occurred`` becomes a half-open UTC interval [from, to) (DESIGN section 3).

A date is a UTC day, a datetime must carry its offset and is converted to UTC, the interval
runs from the start of the precision unit holding ``start`` to the end of the unit holding
``end`` (or ``start``), and every time Frontline writes is UTC with microseconds and 'Z'.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import Occurred, TimePrecision
from service.domain.errors import InvalidEvent
from service.domain.time import EXACT_WIDTH, parse_instant, utc_text, valid_interval


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    """A UTC datetime."""
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def interval(
    start: str, end: str | None = None, precision: TimePrecision = "day"
) -> tuple[datetime, datetime]:
    """valid_interval of an Occurred built from its parts."""
    return valid_interval(Occurred(start=start, end=end, precision=precision))


@pytest.mark.parametrize(
    ("precision", "start", "expected"),
    [
        ("day", "2017-06-03", (utc(2017, 6, 3), utc(2017, 6, 4))),
        # 2017-06-03 is a Saturday: its ISO week runs Monday 29 May to Sunday 4 June.
        ("week", "2017-06-03", (utc(2017, 5, 29), utc(2017, 6, 5))),
        ("month", "2017-06-03", (utc(2017, 6, 1), utc(2017, 7, 1))),
        ("month", "2017-12-31", (utc(2017, 12, 1), utc(2018, 1, 1))),
        ("month", "2016-02-29", (utc(2016, 2, 1), utc(2016, 3, 1))),
        ("year", "2017-06-03", (utc(2017, 1, 1), utc(2018, 1, 1))),
        ("hour", "2017-06-03T10:17:05Z", (utc(2017, 6, 3, 10), utc(2017, 6, 3, 11))),
        (
            "exact",
            "2017-06-03T10:17:05.123456Z",
            (utc(2017, 6, 3, 10, 17, 5, 123456), utc(2017, 6, 3, 10, 17, 5, 123457)),
        ),
        ("exact", "2017-06-03", (utc(2017, 6, 3), utc(2017, 6, 3) + EXACT_WIDTH)),
        ("hour", "2017-06-03", (utc(2017, 6, 3), utc(2017, 6, 3, 1))),
    ],
)
def test_each_precision_covers_its_unit(
    precision: TimePrecision, start: str, expected: tuple[datetime, datetime]
) -> None:
    """Each precision widens ``start`` to the whole unit holding it (exact: one microsecond)."""
    assert interval(start, precision=precision) == expected


def test_a_date_is_a_utc_day() -> None:
    """A bare date means that day in UTC, whatever the server's zone."""
    assert parse_instant("2017-06-03", "occurred.start") == (utc(2017, 6, 3), True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2017-06-03T10:00:00+03:00", utc(2017, 6, 3, 7)),
        ("2017-06-03T01:30-05:00", utc(2017, 6, 3, 6, 30)),
        ("2017-06-03T10:00:00Z", utc(2017, 6, 3, 10)),
        ("2017-06-03T10:00:00z", utc(2017, 6, 3, 10)),
        ("2017-06-03T10:00:00.5+00:00", utc(2017, 6, 3, 10, 0, 0, 500000)),
    ],
)
def test_datetimes_with_offsets_are_converted_to_utc(text: str, expected: datetime) -> None:
    """A datetime with an offset (or 'Z') is the same instant, expressed in UTC."""
    moment, was_date = parse_instant(text, "occurred.start")
    assert (moment, was_date) == (expected, False)
    assert moment.utcoffset() == timedelta(0)


def test_the_day_of_a_datetime_is_its_utc_day() -> None:
    """01:00 at +03:00 on 3 June is 22:00 UTC on 2 June, so a ``day`` event covers 2 June."""
    assert interval("2017-06-03T01:00+03:00") == (utc(2017, 6, 2), utc(2017, 6, 3))


@pytest.mark.parametrize(
    "text", ["2017-06-03T10:00", "2017-06-03T10:00:00.123", "2017-06-03 10:00"]
)
def test_a_naive_datetime_is_rejected(text: str) -> None:
    """A datetime without an offset is ambiguous: 422 naming ``occurred.start``."""
    with pytest.raises(InvalidEvent, match="without a UTC offset") as caught:
        interval(text)
    assert caught.value.field == "occurred.start"


def test_a_naive_end_is_rejected_with_its_own_field() -> None:
    """A naive ``end`` is named as ``occurred.end``, not as the start."""
    with pytest.raises(InvalidEvent) as caught:
        interval("2017-06-03", "2017-06-04T10:00")
    assert caught.value.field == "occurred.end"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2017-06-03", "2017-06-02"),
        ("2017-06-03T10:00Z", "2017-06-03T09:59:59.999999Z"),
        ("2017-06-03T10:00+00:00", "2017-06-03T12:00+03:00"),  # 09:00 UTC: before the start
    ],
)
def test_end_before_start_is_rejected(start: str, end: str) -> None:
    """An end earlier than the start (compared in UTC) is a 422 naming ``occurred.end``."""
    with pytest.raises(InvalidEvent, match="before") as caught:
        interval(start, end)
    assert caught.value.field == "occurred.end"


@pytest.mark.parametrize(
    "text",
    ["2017-13-01", "2017-02-30", "2017/06/03", "garbage", "2017-06-03Z", "2017-06-03T25:00Z"],
)
@pytest.mark.parametrize("field", ["start", "end"])
def test_malformed_dates_are_rejected(text: str, field: str) -> None:
    """Text that is neither a real date nor an ISO 8601 datetime is a 422 naming the field."""
    parts = {"start": "2017-06-01", "end": None}
    parts[field] = text
    with pytest.raises(InvalidEvent) as caught:
        interval(parts["start"] or "", parts["end"])
    assert caught.value.field == f"occurred.{field}"


@pytest.mark.parametrize(
    ("precision", "start", "end", "expected_to"),
    [
        ("day", "2017-06-03", "2017-06-05", utc(2017, 6, 6)),
        ("day", "2017-06-03", "2017-06-03", utc(2017, 6, 4)),
        ("week", "2017-06-03", "2017-06-06", utc(2017, 6, 12)),
        ("month", "2017-06-03", "2017-08-01", utc(2017, 9, 1)),
        ("year", "2015-06-03", "2017-01-01", utc(2018, 1, 1)),
        ("hour", "2017-06-03T10:00Z", "2017-06-03T12:59Z", utc(2017, 6, 3, 13)),
        ("exact", "2017-06-03T10:00Z", "2017-06-03T12:00Z", utc(2017, 6, 3, 12) + EXACT_WIDTH),
    ],
)
def test_end_is_inclusive_of_its_unit(
    precision: TimePrecision, start: str, end: str, expected_to: datetime
) -> None:
    """The interval ends where the unit holding ``end`` ends: an end day is covered whole."""
    valid_from, valid_to = interval(start, end, precision)
    assert valid_to == expected_to
    assert valid_from <= valid_to


DATES = st.dates(min_value=date(1000, 1, 1), max_value=date(9997, 12, 31))
PRECISIONS = st.sampled_from(["exact", "hour", "day", "week", "month", "year"])


@settings(max_examples=200, deadline=None)
@given(
    DATES,
    st.integers(0, 400),
    PRECISIONS,
    st.integers(-14 * 60, 14 * 60),
    st.times(),
)
def test_interval_holds_its_instants_and_is_aligned(
    day: date, span_days: int, precision: TimePrecision, offset_minutes: int, clock: time
) -> None:
    """For any start and later end, [from, to) holds both, from <= start, end < to, in UTC."""
    zone = timezone(timedelta(minutes=offset_minutes))
    start = datetime.combine(day, clock, tzinfo=zone)
    end = start + timedelta(days=span_days)
    valid_from, valid_to = interval(start.isoformat(), end.isoformat(), precision)
    assert valid_from.tzinfo is UTC
    assert valid_to.tzinfo is UTC
    assert valid_from <= start < valid_to
    assert valid_from <= end < valid_to
    if precision != "exact":
        assert (valid_from.minute, valid_from.second, valid_from.microsecond) == (0, 0, 0)
    if precision in ("day", "week", "month", "year"):
        assert valid_from.hour == 0
    if precision == "week":
        assert valid_from.weekday() == 0
    if precision in ("month", "year"):
        assert valid_from.day == 1


def test_an_interval_past_the_last_representable_date_is_rejected() -> None:
    """A unit that would end after 9999-12-31 cannot be stored: a 422, not an OverflowError."""
    with pytest.raises(InvalidEvent, match="representable"):
        interval("9999-12-31")


def test_an_unrepresentable_end_names_occurred_end() -> None:
    """When only the end's unit overflows, the error names ``occurred.end``, not the start.

    Regression test (valid_interval): the overflow was always reported on occurred.start.
    """
    with pytest.raises(InvalidEvent) as caught:
        interval("2017-06-03", "9999-12-31", "month")
    assert caught.value.field == "occurred.end"


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (utc(2017, 6, 3), "2017-06-03T00:00:00.000000Z"),
        (utc(2017, 6, 3, 10, 17, 5, 123), "2017-06-03T10:17:05.000123Z"),
        (
            datetime(2017, 6, 3, 1, 0, tzinfo=timezone(timedelta(hours=3))),
            "2017-06-02T22:00:00.000000Z",
        ),
    ],
)
def test_utc_text_is_utc_with_microseconds_and_z(moment: datetime, text: str) -> None:
    """Times are written in UTC, always with six fraction digits and a 'Z'."""
    assert utc_text(moment) == text


def test_utc_text_round_trips() -> None:
    """What utc_text writes parses back to the same instant."""
    moment = utc(2017, 6, 3, 10, 17, 5, 42)
    assert parse_instant(utc_text(moment), "t") == (moment, False)


def test_utc_text_pads_the_year_to_four_digits() -> None:
    """Years before 1000 are written with four digits, as ISO 8601 and RFC 3339 require.

    Regression test (utc_text): strftime's %Y does not pad on glibc, giving '999-01-01...'.
    """
    assert utc_text(utc(999, 1, 1)) == "0999-01-01T00:00:00.000000Z"
