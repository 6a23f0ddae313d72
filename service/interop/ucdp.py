"""UCDP GED CSV (format ``ucdp-ged``) to Frontline events.

Each row of the UCDP Georeferenced Event Dataset is one event of organised violence between
``side_a`` and ``side_b``, with UCDP's best, low and high estimates of the deaths. It becomes
two events about the row's place, with ids ``event_id("ucdp-ged", id, <type>)`` and
``event_id("ucdp-ged", id, "casualties")``:

* a main event: ``side`` = slug(side_a), ``opponent`` = slug(side_b), ``actor`` = side_a as
  written, whose type follows ``type_of_violence`` and ``date_prec``:

  ================  =========  ===========================================================
  type_of_violence  date_prec  main event
  ================  =========  ===========================================================
  1 (state-based)   1 to 3     ``clash``: the place is contested by side_a against side_b
  2 (non-state)     1 to 3     ``clash`` between the two non-state sides, the same way
  1 or 2            4 or 5     ``other`` (code "UCDP-GED:state-based violence, date_prec
                               4" ...), flagged: a fight known only to the month or year
                               must not mark the place contested for all of it
  3 (one-sided)     any        ``other`` (code "UCDP-GED:one-sided violence"): violence
                               against civilians is not a contest of the place
  empty or absent   as above   as 1 (files older than the column)
  ================  =========  ===========================================================

* a ``casualties`` event with ``casualties`` = {killed: best, low: low, high: high} and the same
  sides. A row breaking ``low <= best <= high`` is imported as given and flagged, never
  repaired; so is a row whose deaths_a + deaths_b + deaths_civilians + deaths_unknown is not
  ``best`` (the codebook defines best as their sum).

Both events keep the row: ``notes`` is the row as one JSON object (:func:`raw_json`),
``quote`` is ``source_article``.

Time: ``occurred.start``/``end`` are date_start/date_end (the day part; an end equal to the
start is left out) and ``occurred.precision`` follows the codebook's ``date_prec``:

==========  =============================================================  ==========
date_prec   UCDP GED codebook                                              precision
==========  =============================================================  ==========
1           the exact date of the event is known                           day
2           the event happened within a span of 2 to 6 days                week
3           only the week of the event is known                            week
4           only the month (a span of 8 to 30 days) is known               month
5           only the year (a span longer than a month) is known            year
==========  =============================================================  ==========

Frontline widens the interval to whole units of the precision, so start..end is always inside
it. An empty date_prec is taken as 1 and flagged.

Place: ``where_coordinates`` is the place's name ("Maskanah town"); a trailing kind word that
the contract knows (town, village, city, district, hill, road, base) becomes ``kind`` and
leaves the name ("Maskanah", town). When it is empty, adm_2, adm_1 or country name the place.
latitude/longitude are the point; ``admin`` is (country, adm_1, adm_2). ``place.precision``
follows ``where_prec``:

==========  =============================================================  ==========
where_prec  UCDP GED codebook                                              precision
==========  =============================================================  ==========
1           the exact location, with its coordinates                       exact
2           within about 25 km of a known point                            near
3           only the second-order administrative division (ADM2)           district
4           only the first-order administrative division (ADM1)            region
5           a part of a country larger than an ADM1, a point between two   region
            places, or a location only loosely described
6           only the country (its centroid)                                country
7           international waters or airspace (an estimated point)          region
==========  =============================================================  ==========

Source: ``source.name`` is the first outlet of ``source_office`` (outlets are separated by
';'), else the outlet that opens ``source_article`` (the text before its first ','), else
"UCDP GED"; ``source.attribution`` lists every outlet of ``source_office`` when there are
several; ``source.published_at`` is the first date of ``source_date`` not before 1900 (UCDP
writes 1753-01-01 for an unknown date: such a date is flagged, never a publication time; a
date after the import is dropped and flagged by the importer). Reliability stays F (cannot
be judged): UCDP does not grade its outlets.

Hedge and credibility, from ``event_clarity`` (1: high clarity, the event is reported on its
own; 2: lower clarity, UCDP derived it from an aggregated or summary report) and
``number_of_sources`` (how many reports UCDP found; -1 or empty: unknown):

==============  ==================  ==========  ===========
event_clarity   number_of_sources   hedge       credibility
==============  ==================  ==========  ===========
1               2 or more           confirmed   2 (probably true)
1               1 or unknown        reported    3 (possibly true)
2               2 or more           reported    3 (possibly true)
2               1 or unknown        reported    4 (doubtful)
empty/unknown   any                 reported    6 (cannot be judged)
==============  ==================  ==========  ===========

Independent reports corroborate, so several sources with a clear event are "confirmed"; an
event UCDP had to carve out of a summary is one step less credible. An event_clarity or
number_of_sources that is not one of these values is taken as unknown and flagged.

A row that cannot be mapped is an error row naming its column: an empty id, date_start or
side_a; a type_of_violence other than 1, 2 or 3; a date that is not YYYY-MM-DD; a date_end
before date_start; a latitude or longitude that is empty, not a number or out of range; a
date_prec or where_prec outside the codebook; a best, low or high that is not a whole number
>= 0; no place name at all.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any, Final

import msgspec

from service.interop.prepare import EARLIEST_PUBLICATION_YEAR
from service.interop.rows import PlaceRef, SourceRow, event_id, read_csv, slug
from service.interop.text import LONG_TEXT_MAX, long_text, one_line

FORMAT: Final = "ucdp-ged"

#: date_prec (UCDP GED codebook) -> occurred.precision.
DATE_PRECISION: Final[Mapping[str, str]] = {
    "1": "day",
    "2": "week",
    "3": "week",
    "4": "month",
    "5": "year",
}

#: where_prec (UCDP GED codebook) -> place.precision.
WHERE_PRECISION: Final[Mapping[str, str]] = {
    "1": "exact",
    "2": "near",
    "3": "district",
    "4": "region",
    "5": "region",
    "6": "country",
    "7": "region",
}

#: type_of_violence (UCDP GED codebook): 1 state-based conflict, 2 non-state conflict (no
#: government among the sides), 3 one-sided violence (against civilians).
VIOLENCE: Final[Mapping[str, str]] = {"1": "state-based", "2": "non-state", "3": "one-sided"}

#: Precisions too coarse for a clash: a month or a year of "contested" would paint the place
#: from one fight whose day is unknown.
COARSE_PRECISIONS: Final = frozenset({"month", "year"})

#: Trailing words of where_coordinates that name a contract place kind.
_KINDS: Final = frozenset({"town", "village", "city", "district", "hill", "road", "base"})

_COUNT_MAX: Final = 10_000_000

#: The row as one JSON object: the same text as rows.raw_json for a row of strings, from
#: msgspec, several times faster.
_encode: Final = msgspec.json.Encoder().encode
#: Sides repeat across a file: slug each once.
_slug: Final = functools.lru_cache(maxsize=4096)(slug)


class _Unmappable(Exception):
    """The row cannot become events; ``column`` says which cell is why."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def read(data: bytes) -> Iterator[SourceRow]:
    """The rows of a UCDP GED CSV file, each mapped to a clash and a casualties event (or to
    an error naming the column that prevents it). Raises ``ValueError`` when the bytes are not
    a UTF-8 CSV file with a header."""
    for line, row in read_csv(data):
        yield map_row(line, row)


def map_row(line: int, row: Mapping[str, str]) -> SourceRow:
    """One UCDP GED row (column -> stripped cell) as a :class:`SourceRow`."""
    raw = _encode(row).decode()
    source_id = row.get("id", "") or None
    try:
        return _mapped(line, source_id, raw, row)
    except _Unmappable as exc:
        return SourceRow(
            line=line, source_id=source_id, raw=raw, error=exc.reason, fields=(exc.column,)
        )


def _mapped(line: int, source_id: str | None, raw: str, row: Mapping[str, str]) -> SourceRow:
    if source_id is None:
        raise _Unmappable("id", "id is empty: the events' ids are derived from it")
    flags: list[str] = []
    flag_fields: list[str] = []

    def flag(reason: str, *columns: str) -> None:
        flags.append(reason)
        flag_fields.extend(c for c in columns if c not in flag_fields)

    side_a = row.get("side_a", "")
    if not side_a:
        raise _Unmappable("side_a", "side_a is empty: a clash needs a side")
    side_b = row.get("side_b", "")

    occurred = _occurred(row, flag)
    kind, code = _main_kind(row, occurred["precision"], flag)
    place = _place(row)
    best = _count(row, "best", required=True)
    low = _count(row, "low", required=False)
    high = _count(row, "high", required=False)
    if (low is not None and best is not None and low > best) or (
        high is not None and best is not None and best > high
    ):
        flag(
            f"low <= best <= high does not hold (low {_shown(low)}, best {best}, "
            f"high {_shown(high)}): imported as given",
            "low",
            "best",
            "high",
        )
    _check_deaths_sum(row, best, flag)
    hedge, credibility = _grading(row, flag)

    notes = raw
    if len(raw) > LONG_TEXT_MAX:
        notes = raw[:LONG_TEXT_MAX]
        flag(f"the row is {len(raw)} characters; notes keep its first {LONG_TEXT_MAX}")

    common: dict[str, Any] = {
        "side": _slug(side_a),
        "actor": one_line(side_a),
        "opponent": _slug(side_b) if side_b else None,
        "occurred": occurred,
        "source": _source(row, flag),
        "credibility": credibility,
        "hedge": hedge,
        "quote": long_text(row.get("source_article")),
        "notes": notes,
    }
    common = {k: v for k, v in common.items() if v is not None}
    casualties = {"killed": best, "low": low, "high": high}
    main: dict[str, Any] = {"id": str(event_id(FORMAT, source_id, kind)), "type": kind}
    if code is not None:
        main["code"] = code
    main.update(common)
    deaths = {
        "id": str(event_id(FORMAT, source_id, "casualties")),
        "type": "casualties",
        **common,
        "casualties": {k: v for k, v in casualties.items() if v is not None},
    }
    return SourceRow(
        line=line,
        source_id=source_id,
        raw=raw,
        place=place,
        events=(main, deaths),
        flags=tuple(flags),
        fields=tuple(flag_fields),
    )


def _shown(value: int | None) -> str:
    return "empty" if value is None else str(value)


def _day(row: Mapping[str, str], column: str) -> str | None:
    """The date in ``column`` as YYYY-MM-DD (a time of day after it, as some exports write
    '2017-06-03 00:00:00.000', is dropped); ``None`` when empty."""
    text = row.get(column, "")
    if not text:
        return None
    head, rest = text[:10], text[10:]
    try:
        day = date.fromisoformat(head)
    except ValueError:
        day = None
    if day is None or (rest and rest[0] not in " T"):
        raise _Unmappable(column, f"{column} is not a date (YYYY-MM-DD): {text!r}")
    return day.isoformat()


def _occurred(row: Mapping[str, str], flag: Any) -> dict[str, str]:
    start = _day(row, "date_start")
    if start is None:
        raise _Unmappable("date_start", "date_start is empty: the event has no date")
    end = _day(row, "date_end")
    if end is not None and end < start:
        raise _Unmappable("date_end", f"date_end ({end}) is before date_start ({start})")
    code = row.get("date_prec", "")
    if not code:
        code = "1"
        flag("date_prec is empty: taken as 1 (exact day)", "date_prec")
    precision = DATE_PRECISION.get(code)
    if precision is None:
        raise _Unmappable(
            "date_prec", f"date_prec {code!r} is not a UCDP date precision code (1 to 5)"
        )
    occurred = {"start": start, "precision": precision}
    if end is not None and end != start:
        occurred["end"] = end
    return occurred


def _main_kind(row: Mapping[str, str], precision: str, flag: Any) -> tuple[str, str | None]:
    """(type, ``code`` of an ``other`` event) of the row's main event, from
    ``type_of_violence`` and the precision of its date (tables in the docstring)."""
    violence = row.get("type_of_violence", "")
    if violence and violence not in VIOLENCE:
        raise _Unmappable(
            "type_of_violence",
            f"type_of_violence {violence!r} is not a UCDP type of violence (1, 2 or 3)",
        )
    if violence == "3":
        return "other", "UCDP-GED:one-sided violence"
    if precision in COARSE_PRECISIONS:
        code = row.get("date_prec", "")
        flag(
            f"date_prec {code}: only the {precision} is known, so the clash is imported as "
            "informational (other): it does not mark the place contested for the whole "
            f"{precision}",
            "date_prec",
        )
        violence_name = VIOLENCE.get(violence, "state-based")
        return "other", f"UCDP-GED:{violence_name} violence, date_prec {code}"
    return "clash", None


def _coordinate(row: Mapping[str, str], column: str, bound: float) -> float:
    text = row.get(column, "")
    if not text:
        raise _Unmappable(column, f"{column} is empty: the place has no point")
    try:
        value = float(text)
    except ValueError:
        raise _Unmappable(column, f"{column} is not a number: {text!r}") from None
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise _Unmappable(column, f"{column} {text} is outside -{bound:g}..{bound:g}")
    return value


def _place(row: Mapping[str, str]) -> PlaceRef:
    lat = _coordinate(row, "latitude", 90.0)
    lon = _coordinate(row, "longitude", 180.0)
    code = row.get("where_prec", "")
    precision = WHERE_PRECISION.get(code) if code else None
    if code and precision is None:
        raise _Unmappable(
            "where_prec", f"where_prec {code!r} is not a UCDP location precision code (1 to 7)"
        )
    written = next(
        (
            t
            for c in ("where_coordinates", "adm_2", "adm_1", "country")
            if (t := one_line(row.get(c)))
        ),
        None,
    )
    if written is None:
        raise _Unmappable(
            "where_coordinates", "where_coordinates, adm_2, adm_1 and country are all empty"
        )
    name, kind = written, None
    head, _, last = written.rpartition(" ")
    if head and last.lower() in _KINDS:
        name, kind = head.strip(), last.lower()
    admin = tuple(t for c in ("country", "adm_1", "adm_2") if (t := one_line(row.get(c))))
    return PlaceRef(name=name, lat=lat, lon=lon, precision=precision, kind=kind, admin=admin)


def _count(row: Mapping[str, str], column: str, *, required: bool) -> int | None:
    text = row.get(column, "")
    if not text:
        if required:
            raise _Unmappable(column, f"{column} is empty: the deaths have no best estimate")
        return None
    value = _whole(text)
    if value is None or not 0 <= value <= _COUNT_MAX:
        raise _Unmappable(column, f"{column} is not a whole number of deaths >= 0: {text!r}")
    return value


def _whole(text: str) -> int | None:
    """A whole number written as '12' or '12.0' (as pandas writes integer columns with gaps)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value.is_integer() else None


def _check_deaths_sum(row: Mapping[str, str], best: int | None, flag: Any) -> None:
    columns = ("deaths_a", "deaths_b", "deaths_civilians", "deaths_unknown")
    cells = [row.get(c, "") for c in columns]
    if best is None or not all(cells):
        return
    parts = [_whole(c) for c in cells]
    if any(p is None for p in parts):
        flag("a deaths_* column is not a whole number; kept as given in notes", *columns)
        return
    total = sum(p for p in parts if p is not None)
    if total != best:
        flag(
            f"deaths_a + deaths_b + deaths_civilians + deaths_unknown = {total}, best = {best}",
            *columns,
            "best",
        )


def _grading(row: Mapping[str, str], flag: Any) -> tuple[str, int]:
    """(hedge, credibility) from event_clarity and number_of_sources (table in the docstring)."""
    clarity_text = row.get("event_clarity", "")
    clarity = clarity_text if clarity_text in ("1", "2") else None
    if clarity_text and clarity is None:
        flag(f"event_clarity {clarity_text!r} is not 1 or 2: taken as unknown", "event_clarity")
    sources_text = row.get("number_of_sources", "")
    sources = _whole(sources_text) if sources_text else None
    if sources_text and (sources is None or sources < -1):
        flag(
            f"number_of_sources {sources_text!r} is not a count: taken as unknown",
            "number_of_sources",
        )
        sources = None
    several = sources is not None and sources >= 2
    if clarity == "1":
        return ("confirmed", 2) if several else ("reported", 3)
    if clarity == "2":
        return ("reported", 3) if several else ("reported", 4)
    return "reported", 6


def _source(row: Mapping[str, str], flag: Any) -> dict[str, str]:
    offices = [t for part in row.get("source_office", "").split(";") if (t := one_line(part))]
    article = row.get("source_article", "")
    name = offices[0] if offices else one_line(article.split(",", 1)[0]) or "UCDP GED"
    source = {"name": name}
    if len(offices) > 1:
        attribution = one_line("; ".join(offices))
        if attribution:
            source["attribution"] = attribution
    for part in row.get("source_date", "").split(";"):
        try:
            day = date.fromisoformat(part.strip()[:10])
        except ValueError:
            continue
        # UCDP writes 1753-01-01 (the smallest SQL Server datetime) for an unknown date.
        if day.year < EARLIEST_PUBLICATION_YEAR:
            flag(
                f"source_date {day.isoformat()} is before {EARLIEST_PUBLICATION_YEAR} (UCDP "
                "writes 1753-01-01 for an unknown date): not a publication time",
                "source_date",
            )
            continue
        source["published_at"] = day.isoformat()
        break
    return source
