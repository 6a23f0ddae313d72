"""Results as tables: rows of plain values, and pandas or GeoPandas frames built from them.

pandas and GeoPandas are optional: they are imported when a ``to_pandas()`` or
``to_geopandas()`` is called, never before, and a clear error names what to install when
they are missing. Every frame has one row per item, in the order the server listed them;
``to_geopandas()`` gives each row a point (longitude, latitude; WGS 84, ``EPSG:4326``), or
no geometry when the place has no point.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import ModuleType
from typing import Any, Final

import msgspec

from contracts.front import PlaceState
from contracts.responses import StoredEvent
from frontline.client.errors import FrontlineClientError

Row = dict[str, Any]


class MissingDependency(FrontlineClientError, ImportError):
    """An optional package a table needs (pandas, GeoPandas) is not installed."""


def _optional(module: str, package: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependency(
            f"{purpose} needs {package}, which is not installed: pip install {package}"
        ) from error


class Casualty(msgspec.Struct, frozen=True, kw_only=True):
    """One casualty claim: the figures one event's source gave, with where and when."""

    position: int
    id: uuid.UUID
    type: str
    place: str
    lat: float | None
    lon: float | None
    valid_from: str
    """The event's ``occurred.start`` as sent (a date or a datetime)."""
    source: str
    side: str | None
    """The event's ``side`` (for a clash: the side that fought)."""
    casualties_side: str | None
    """The side the figures are of (``casualties.side``)."""
    killed: int | None
    wounded: int | None
    low: int | None
    high: int | None
    recorded_at: datetime


def casualty_of(stored: StoredEvent) -> Casualty | None:
    """The event's casualty claim, or None when it carries no figures."""
    payload = msgspec.json.decode(stored.event)
    figures = payload.get("casualties")
    if not isinstance(figures, dict):
        return None
    place = payload.get("place") or {}
    return Casualty(
        position=stored.position,
        id=stored.id,
        type=stored.type,
        place=stored.place,
        lat=place.get("lat"),
        lon=place.get("lon"),
        valid_from=str((payload.get("occurred") or {}).get("start", "")),
        source=str((payload.get("source") or {}).get("name", "")),
        side=payload.get("side"),
        casualties_side=figures.get("side"),
        killed=figures.get("killed"),
        wounded=figures.get("wounded"),
        low=figures.get("low"),
        high=figures.get("high"),
        recorded_at=stored.recorded_at,
    )


def _flat(prefix: str, value: Mapping[str, Any], into: Row) -> None:
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            _flat(name + ".", item, into)
        else:
            into[name] = item


def event_row(stored: StoredEvent) -> Row:
    """A stored event as one row: the log's fields, then the event's own, flattened with
    dots (``place.lat``, ``source.name``, ``occurred.start``, ``casualties.killed``)."""
    row: Row = {
        "position": stored.position,
        "id": stored.id,
        "type": stored.type,
        "place": stored.place,
        "place_version": stored.place_version,
        "recorded_at": stored.recorded_at,
        "commit_position": stored.commit_position,
        "hash": stored.hash,
    }
    payload = msgspec.json.decode(stored.event)
    _flat("", {k: v for k, v in payload.items() if k not in ("id", "type")}, row)
    row["lat"] = row.get("place.lat")
    row["lon"] = row.get("place.lon")
    return row


def state_row(item: PlaceState) -> Row:
    """A place's state as one row: the place, then its segment (claims and supports of a
    dispute are counted; the events are the supporting ids)."""
    place, segment = item.place, item.segment
    return {
        "place_id": place.id,
        "name": place.name,
        "kind": place.kind,
        "lat": place.lat,
        "lon": place.lon,
        "parent": place.parent,
        "precision": place.precision,
        "controller": segment.controller,
        "status": segment.status,
        "status_by": segment.status_by,
        "disputed": segment.disputed,
        "confidence": segment.confidence,
        "basis": segment.basis,
        "held_since": segment.held_since,
        "valid_from": segment.valid_from,
        "valid_to": segment.valid_to,
        "claims": len(segment.claims),
        "reason": segment.reason,
        "events": [str(e) for e in segment.events],
    }


def casualty_row(item: Casualty) -> Row:
    """A casualty claim as one row."""
    return {f: getattr(item, f) for f in item.__struct_fields__}


def to_pandas(rows: Sequence[Row], columns: Sequence[str] | None = None) -> Any:
    """A pandas DataFrame of the rows (pandas imported now; MissingDependency without it)."""
    pandas = _optional("pandas", "pandas", "to_pandas()")
    return pandas.DataFrame.from_records(list(rows), columns=columns)


def to_geopandas(rows: Sequence[Row], columns: Sequence[str] | None = None) -> Any:
    """A GeoDataFrame of the rows, a point per row from its ``lon`` and ``lat`` (none when
    either is missing), in EPSG:4326."""
    geopandas = _optional("geopandas", "geopandas", "to_geopandas()")
    geometry = _optional("shapely.geometry", "shapely", "to_geopandas()")
    frame = to_pandas(rows, columns)
    points = [
        None if row.get("lon") is None or row.get("lat") is None
        else geometry.Point(row["lon"], row["lat"])
        for row in rows
    ]  # fmt: skip
    return geopandas.GeoDataFrame(frame, geometry=points, crs="EPSG:4326")


#: The row function of each item type a table can be made of.
ROWS: Final[dict[type, Callable[[Any], Row]]] = {
    StoredEvent: event_row,
    PlaceState: state_row,
    Casualty: casualty_row,
}


def rows_of(items: Sequence[Any]) -> list[Row]:
    """Rows of items of one kind (events, states, casualty claims)."""
    rows: list[Row] = []
    for item in items:
        make = ROWS.get(type(item))
        if make is None:
            raise FrontlineClientError(f"no table is defined for {type(item).__name__}")
        rows.append(make(item))
    return rows
