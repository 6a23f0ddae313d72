"""ACLED export CSV to Frontline events (the mapping table is in docs/interop.md).

One ACLED row is one :class:`SourceRow`: the mapped event (``capture``, ``base_established``,
``clash`` or ``strike``, by ``sub_event_type``) and, when ``fatalities`` is above zero, a
``casualties`` event with the figure as ``killed``. Every event keeps the whole row as JSON in
``notes``; ACLED's own ``notes`` (its description of the event) becomes the ``quote``. A row
whose sub-event type has no Frontline meaning (protests, riots, arrests ...) is an error row
naming ``sub_event_type``, as is a row with a date, point or code Frontline cannot read.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any, Final

from contracts.events import Event
from service.domain.validation import too_deep
from service.interop.rows import PlaceRef, SourceRow, event_id, raw_json, read_csv, slug
from service.interop.spreadsheet import restore

_event_id: Final = event_id  # export_row's own ``event_id`` parameter shadows it

FORMAT: Final = "acled"

#: ACLED's 31 export columns, in the codebook's order.
COLUMNS: Final = (
    "event_id_cnty", "event_date", "year", "time_precision", "disorder_type", "event_type",
    "sub_event_type", "actor1", "assoc_actor_1", "inter1", "actor2", "assoc_actor_2", "inter2",
    "interaction", "civilian_targeting", "iso", "region", "country", "admin1", "admin2",
    "admin3", "location", "latitude", "longitude", "geo_precision", "source", "source_scale",
    "notes", "fatalities", "tags", "timestamp",
)  # fmt: skip

#: sub_event_type -> Frontline event type.
SUB_EVENT_TYPES: Final[dict[str, str]] = {
    "Government regains territory": "capture",
    "Non-state actor overtakes territory": "capture",
    "Non-violent transfer of territory": "capture",
    "Headquarters or base established": "base_established",
    "Armed clash": "clash",
    "Shelling/artillery/missile attack": "strike",
    "Air/drone strike": "strike",
    "Remote explosive/landmine/IED": "strike",
    "Grenade": "strike",
    "Suicide bomb": "strike",
    "Chemical weapon": "strike",
}

#: time_precision -> occurred.precision.
TIME_PRECISION: Final = {"1": "day", "2": "week", "3": "month"}
#: geo_precision -> place.precision.
GEO_PRECISION: Final = {"1": "exact", "2": "near", "3": "region"}

#: The required columns: a file without them is not an ACLED export.
REQUIRED: Final = ("event_id_cnty", "event_date", "sub_event_type", "actor1", "location")

_DATE_FORMATS: Final = ("%Y-%m-%d", "%d %B %Y", "%d-%B-%Y", "%m/%d/%Y")


#: Actor names repeat across a file: their slugs are cached.
_slug: Final = functools.lru_cache(maxsize=1 << 14)(slug)


class _RowError(Exception):
    def __init__(self, reason: str, column: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.column = column


def read(data: bytes) -> Iterator[SourceRow]:
    """The rows of an ACLED export CSV. Raises ``ValueError`` when the file is not CSV or
    lacks ACLED's key columns."""
    records = read_csv(data)
    first = next(records, None)
    if first is None:
        return
    missing = [c for c in REQUIRED if c not in first[1]]
    if missing:
        raise ValueError(f"not an ACLED export: no column {', '.join(missing)}")
    ours = "frontline_id" in first[1]
    yield row(first[0], _restored(first[1]) if ours else first[1])
    for line, record in records:
        # A file Frontline wrote: its cells were neutralised against spreadsheet formulas.
        yield row(line, _restored(record) if ours else record)


def _restored(record: dict[str, str]) -> dict[str, str]:
    return {column: restore(cell) for column, cell in record.items()}


def row(line: int, record: dict[str, str]) -> SourceRow:
    """One ACLED record as a :class:`SourceRow` (an error row when it cannot be mapped).
    Frontline's own export columns (a file exported from Frontline, imported again) are not
    part of the ACLED row kept in ``notes``."""
    raw = raw_json(_without_export_columns(record))
    source_id = record.get("event_id_cnty") or None
    try:
        return _mapped(line, record, raw)
    except _RowError as error:
        return SourceRow(
            line=line, source_id=source_id, raw=raw, error=error.reason, fields=(error.column,)
        )


def _without_export_columns(record: dict[str, str]) -> dict[str, str]:
    if not _FRONTLINE_COLUMNS.intersection(record):
        return record
    return {k: v for k, v in record.items() if k not in _FRONTLINE_COLUMNS}


def _mapped(line: int, record: dict[str, str], raw: str) -> SourceRow:
    source_id = record["event_id_cnty"]
    if not source_id:
        raise _RowError(
            "event_id_cnty is empty: the row has no id to import it by", "event_id_cnty"
        )
    sub_event = record["sub_event_type"]
    kind = SUB_EVENT_TYPES.get(sub_event)
    if kind is None:
        raise _RowError(
            f"sub_event_type {sub_event!r} has no Frontline event type", "sub_event_type"
        )
    actor = record["actor1"]
    if not actor:
        raise _RowError("actor1 is empty: the event needs the side that acted", "actor1")
    occurred = {
        "start": _date(record["event_date"]).isoformat(),
        "precision": _code(record, "time_precision", TIME_PRECISION, "day"),
    }
    place = _place(record)
    common: dict[str, Any] = {
        "occurred": occurred,
        "source": {"name": _source_name(record.get("source", ""))},
        "notes": raw,
    }
    if record.get("notes"):
        common["quote"] = record["notes"]
    main: dict[str, Any] = {
        "type": kind,
        "id": str(event_id(FORMAT, source_id, kind)),
        "side": _slug(actor),
        "actor": _one_line(actor),
        **common,
    }
    if record.get("actor2"):
        main["opponent"] = _slug(record["actor2"])
    events = [main]
    fatalities = _fatalities(record.get("fatalities", ""))
    if fatalities > 0:
        events.append({
            "type": "casualties",
            "id": str(event_id(FORMAT, source_id, "casualties")),
            "casualties": {"killed": fatalities},
            **common,
        })  # fmt: skip
    return SourceRow(line=line, source_id=source_id, raw=raw, place=place, events=tuple(events))


def _date(text: str) -> date:
    if len(text) == 10:  # the common case first, without strptime's cost
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise _RowError(
        f"event_date {text!r} is not a date (YYYY-MM-DD or '3 June 2017')", "event_date"
    )


def _code(
    record: dict[str, str], column: str, codes: dict[str, str], default: str | None
) -> str | None:
    """The contract value of a precision code; ``default`` for an empty cell."""
    value = record.get(column, "")
    if not value:
        return default
    mapped = codes.get(value)
    if mapped is None:
        raise _RowError(f"{column} {value!r} is not one of {', '.join(codes)}", column)
    return mapped


def _coordinate(record: dict[str, str], column: str, bound: float) -> float | None:
    text = record.get(column, "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise _RowError(f"{column} {text!r} is not a number", column) from None
    if not -bound <= value <= bound:
        raise _RowError(f"{column} {text!r} is outside -{bound:g}..{bound:g}", column)
    return value


def _place(record: dict[str, str]) -> PlaceRef:
    name = record["location"]
    if not name:
        raise _RowError("location is empty: the event needs a place", "location")
    lat = _coordinate(record, "latitude", 90.0)
    lon = _coordinate(record, "longitude", 180.0)
    if (lat is None) != (lon is None):
        raise _RowError("latitude and longitude must both be given or both be empty", "latitude")
    admin = tuple(record[c] for c in ("country", "admin1", "admin2", "admin3") if record.get(c))
    return PlaceRef(
        name=_one_line(name),
        lat=lat,
        lon=lon,
        precision=_code(record, "geo_precision", GEO_PRECISION, None),
        admin=admin,
    )


def _fatalities(text: str) -> int:
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        raise _RowError(f"fatalities {text!r} is not a whole number", "fatalities") from None
    if value < 0:
        raise _RowError(f"fatalities {text!r} is negative", "fatalities")
    return value


def _one_line(text: str) -> str:
    """A contract ``Text``: ACLED cells may hold newlines; they become spaces."""
    return " ".join(text.split())[:2000]


def _source_name(text: str) -> str:
    return _one_line(text) or "ACLED"


# --- export: the log as ACLED-shaped CSV ------------------------------------------------------

#: The columns Frontline's export adds after ACLED's (so a row leads back to its event).
_FRONTLINE_COLUMNS: Final = frozenset(
    {"frontline_id", "position", "type", "place_id", "recorded_at"}
)
#: ACLED's columns, then Frontline's own.
EXPORT_COLUMNS: Final = (*COLUMNS, "frontline_id", "position", "type", "place_id", "recorded_at")

#: Frontline type -> (disorder_type, event_type, sub_event_type), for events not imported from
#: ACLED. A capture by a state force is written as GOVERNMENT_CAPTURE instead (see
#: :func:`named_state_force`).
EXPORT_TYPES: Final[dict[str, tuple[str, str, str]]] = {
    "capture": ("Political violence", "Battles", "Non-state actor overtakes territory"),
    "clash": ("Political violence", "Battles", "Armed clash"),
    "counter_attack": ("Political violence", "Battles", "Armed clash"),
    "strike": (
        "Political violence",
        "Explosions/Remote violence",
        "Shelling/artillery/missile attack",
    ),
    "base_established": (
        "Strategic developments",
        "Strategic developments",
        "Headquarters or base established",
    ),
}
OTHER_DEVELOPMENT: Final = ("Strategic developments", "Strategic developments", "Other")
#: ACLED's sub-event for territory taken by government forces.
GOVERNMENT_CAPTURE: Final = ("Political violence", "Battles", "Government regains territory")

#: Side ids that name a state's forces by the datasets' own conventions: ACLED's "Military
#: Forces of X (2000-)" and "Police Forces of X", UCDP's "Government of X", and sides named
#: "<country>-government" (the seed's ``syrian-government``).
_STATE_PREFIXES: Final = ("military-forces-of-", "police-forces-of-", "government-of-")
_STATE_SUFFIXES: Final = ("-government",)


def named_state_force(side: str | None) -> bool:
    """Whether ``side`` names a state's forces by the naming conventions above: the fallback
    the ACLED export uses for a side whose kind no registry gives. Anything else counts as a
    non-state actor (``free-syrian-army``, ``isis``, ``sdf``)."""
    if not side:
        return False
    return side.startswith(_STATE_PREFIXES) or side.endswith(_STATE_SUFFIXES)


EXPORT_TIME_PRECISION: Final = {"week": "2", "month": "3", "year": "3"}
EXPORT_GEO_PRECISION: Final = {"exact": "1", "near": "2"}


def source_row(notes: str | None) -> dict[str, Any] | None:
    """The ACLED row an imported event keeps in its notes, or None for other events."""
    if not notes or not notes.startswith("{"):
        return None
    if too_deep(notes.encode(), 1):
        # A kept row is flat; any client may write notes nested thousands deep, which the
        # json module would recurse into until the export failed.
        return None
    try:
        kept = json.loads(notes)
    except ValueError:
        return None
    if isinstance(kept, dict) and "event_id_cnty" in kept and "sub_event_type" in kept:
        return kept
    return None


def export_row(
    *,
    position: int,
    event_id: str,
    kind: str,
    place_id: str,
    recorded_at: datetime,
    event: Event,
    state_force: Callable[[str | None], bool] = named_state_force,
) -> tuple[object, ...] | None:
    """One stored event as a row of EXPORT_COLUMNS, or None when it has no row of its own.

    A record imported from ACLED is one row, as ACLED gave it (its ``fatalities`` too),
    written for its main event; the ``casualties`` event derived from that figure has no row
    (None), so tools keying on ``event_id_cnty`` see no duplicate and the file imports again.
    Other events are written from their own fields (one row per event); a capture is
    ACLED's "Government regains territory" when ``state_force(side)`` holds, "Non-state
    actor overtakes territory" otherwise.
    """
    figures = event.casualties
    fatalities = figures.killed if figures is not None and figures.killed is not None else 0
    kept = source_row(event.notes)
    if kept is not None:
        derived = _event_id(FORMAT, str(kept["event_id_cnty"]), "casualties")
        if kind == "casualties" and event.id == derived:
            return None
        cells = [kept.get(column, "") for column in COLUMNS]
        return (*cells, event_id, position, kind, place_id, recorded_at)
    day = event.occurred.start[:10]
    disorder, event_type, sub_event = (
        GOVERNMENT_CAPTURE
        if kind == "capture" and state_force(event.side)
        else EXPORT_TYPES.get(kind, OTHER_DEVELOPMENT)
    )
    place = event.place
    values: dict[str, object] = {
        "event_id_cnty": f"FL{position}",
        "event_date": day,
        "year": day[:4],
        "time_precision": EXPORT_TIME_PRECISION.get(event.occurred.precision, "1"),
        "disorder_type": disorder,
        "event_type": event_type,
        "sub_event_type": sub_event,
        "actor1": event.actor or event.side,
        "actor2": event.opponent,
        "location": place.name or place.id,
        "latitude": place.lat,
        "longitude": place.lon,
        "geo_precision": EXPORT_GEO_PRECISION.get(place.precision or "exact", "3"),
        "source": event.source.name,
        "notes": event.quote,
        "fatalities": fatalities,
        "timestamp": int(recorded_at.timestamp()),
    }
    return (
        *(values.get(column) for column in COLUMNS),
        event_id,
        position,
        kind,
        place_id,
        recorded_at,
    )
