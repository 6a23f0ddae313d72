"""MAVERICK event reports (format ``maverick``) to Frontline events.

MAVERICK (van Baalen and Höglund) records every report about an event of violence as a row of
its own: several outlets describe one event (``event_id``), each with its own figures. A CSV
file has the columns ``id`` (the report), ``event_id`` (the event it reports), ``country``,
``city``, ``location``, ``date_start``, ``actor1``, ``deaths_best``, ``injuries_best`` and
``source``, written ``Outlet (YYYY-MM-DD) headline``. Other columns are kept in the raw row.

Each report becomes **one** ``casualties`` event, ``event_id("maverick", id, "casualties")``:

=================  ==========================================================================
Frontline          MAVERICK column
=================  ==========================================================================
id                 ``id`` (required)
side, actor        ``actor1``: ``side`` its slug, ``actor`` as written (empty: no side)
occurred           ``date_start`` (YYYY-MM-DD, required), precision ``day``
place              ``city`` (else ``country``) names it, ``admin`` = (country,); no point:
                   ``precision`` ``district`` for a city, ``country`` for a country alone
source             ``source``: the outlet (``name``), the date in brackets
                   (``published_at``), the headline (``quote``); a source not written that
                   way is the outlet as a whole and the row is flagged
casualties         ``killed`` = deaths_best, ``wounded`` = injuries_best (empty: left out)
relates_to         the reports of one ``event_id`` are linked: each report after the first
                   ``confirms`` the event's first report in the file about the same place
                   (links stay within one place: a report naming another place is not
                   linked, and is flagged)
notes              the row as one JSON object
=================  ==========================================================================

A ``confirms`` between casualty reports claims no control (DESIGN 4, rule 2): it only ties
the reports of one incident together, so that the casualties read lists their figures side by
side, never averaged. A publication date before 1900 is flagged and left out.

A row that cannot be mapped is an error row naming its column: an empty ``id`` or
``event_id``; ``date_start`` empty or not YYYY-MM-DD; ``deaths_best`` or ``injuries_best``
not a whole number >= 0; neither ``city`` nor ``country``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any, Final

import msgspec

from service.interop.prepare import EARLIEST_PUBLICATION_YEAR
from service.interop.rows import PlaceRef, SourceRow, event_id, read_csv, slug
from service.interop.text import LONG_TEXT_MAX, long_text, one_line

FORMAT: Final = "maverick"

#: ``Outlet (YYYY-MM-DD) headline``: the outlet is what comes before the first bracketed date
#: (an outlet may hold brackets of its own: ``Hawar News (ANHA) (2017-05-12) ...``).
_SOURCE: Final = re.compile(
    r"^(?P<outlet>.+?)\s*\((?P<day>\d{4}-\d{2}-\d{2})\)\s*(?P<head>.*)$", re.S
)

_COUNT_MAX: Final = 10_000_000
_encode: Final = msgspec.json.Encoder().encode
_slug: Final = functools.lru_cache(maxsize=4096)(slug)


class _Unmappable(Exception):
    """The row cannot become an event; ``column`` says which cell is why."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def read(data: bytes) -> Iterator[SourceRow]:
    """The reports of a MAVERICK CSV file, each mapped to a casualties event linked to the
    first report of its event (or to an error naming the column). Raises ``ValueError`` when
    the bytes are not a UTF-8 CSV file with a header."""
    first: dict[str, dict[PlaceRef, str]] = {}
    for line, row in read_csv(data):
        yield _row(line, row, first)


def _row(line: int, row: Mapping[str, str], first: dict[str, dict[PlaceRef, str]]) -> SourceRow:
    raw = _encode(row).decode()
    source_id = one_line(row.get("id")) or None
    try:
        return _mapped(line, source_id, raw, row, first)
    except _Unmappable as exc:
        return SourceRow(
            line=line, source_id=source_id, raw=raw, error=exc.reason, fields=(exc.column,)
        )


def _mapped(
    line: int,
    source_id: str | None,
    raw: str,
    row: Mapping[str, str],
    first: dict[str, dict[PlaceRef, str]],
) -> SourceRow:
    if source_id is None:
        raise _Unmappable("id", "id is empty: the event's id is derived from it")
    incident = one_line(row.get("event_id"))
    if incident is None:
        raise _Unmappable("event_id", "event_id is empty: the report belongs to no event")
    flags: list[str] = []
    flag_fields: list[str] = []

    def flag(reason: str, column: str) -> None:
        flags.append(reason)
        if column not in flag_fields:
            flag_fields.append(column)

    start = _day(row.get("date_start", ""))
    place = _place(row)
    casualties = {
        key: value
        for key, column in (("killed", "deaths_best"), ("wounded", "injuries_best"))
        if (value := _count(row, column)) is not None
    }
    source, quote = _source(row.get("source", ""), flag)
    actor = one_line(row.get("actor1"))
    notes = raw
    if len(raw) > LONG_TEXT_MAX:
        notes = raw[:LONG_TEXT_MAX]
        flag(f"the row is {len(raw)} characters; notes keep its first {LONG_TEXT_MAX}", "")

    own = str(event_id(FORMAT, source_id, "casualties"))
    reports = first.setdefault(incident, {})
    earlier = reports.setdefault(place, own)
    links = [] if earlier == own else [{"event": earlier, "relation": "confirms"}]
    if not links and len(reports) > 1:
        flag(
            f"another report of event {incident} names another place: not linked to it "
            "(links stay within one place)",
            "city",
        )
    event: dict[str, Any] = {
        "id": own,
        "type": "casualties",
        "side": _slug(actor) if actor else None,
        "actor": actor,
        "occurred": {"start": start, "precision": "day"},
        "source": source,
        "casualties": casualties,
        "relates_to": links,
        "quote": quote,
        "notes": notes,
    }
    return SourceRow(
        line=line,
        source_id=source_id,
        raw=raw,
        place=place,
        events=({k: v for k, v in event.items() if v is not None and v != []},),
        flags=tuple(flags),
        fields=tuple(f for f in flag_fields if f),
    )


def _day(text: str) -> str:
    if not text:
        raise _Unmappable("date_start", "date_start is empty: the report has no date")
    head, rest = text[:10], text[10:]
    try:
        day = date.fromisoformat(head)
    except ValueError:
        day = None
    if day is None or (rest and rest[0] not in " T"):
        raise _Unmappable("date_start", f"date_start is not a date (YYYY-MM-DD): {text!r}")
    return day.isoformat()


def _place(row: Mapping[str, str]) -> PlaceRef:
    city, country = one_line(row.get("city")), one_line(row.get("country"))
    if city is not None:
        return PlaceRef(name=city, precision="district", admin=(country,) if country else ())
    if country is not None:
        return PlaceRef(name=country, precision="country")
    raise _Unmappable("city", "city and country are both empty: the report has no place")


def _count(row: Mapping[str, str], column: str) -> int | None:
    text = row.get(column, "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not value.is_integer() or not 0 <= value <= _COUNT_MAX:
        raise _Unmappable(column, f"{column} is not a whole number >= 0: {text!r}")
    return int(value)


def _source(text: str, flag: Any) -> tuple[dict[str, str], str | None]:
    """(contract ``source``, ``quote``) of a ``source`` cell ``Outlet (YYYY-MM-DD) headline``."""
    written = one_line(text)
    if written is None:
        flag("source is empty: the report is attributed to MAVERICK", "source")
        return {"name": "MAVERICK"}, None
    match = _SOURCE.match(text.strip())
    day = None
    if match is not None:
        try:
            day = date.fromisoformat(match["day"])
        except ValueError:
            day = None
    outlet = one_line(match["outlet"]) if match is not None and day is not None else None
    if match is None or day is None or outlet is None:
        flag(
            "source is not 'Outlet (YYYY-MM-DD) headline': the whole cell is the outlet, "
            "with no publication date",
            "source",
        )
        return {"name": written}, None
    source = {"name": outlet}
    if day.year < EARLIEST_PUBLICATION_YEAR:
        flag(
            f"source's date {day.isoformat()} is before {EARLIEST_PUBLICATION_YEAR}: not a "
            "publication time",
            "source",
        )
    else:
        source["published_at"] = day.isoformat()
    return source, long_text(match["head"])
