"""Answers about the front: state at a date as known at a position, timelines, disputes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, TypeAlias

import msgspec

from contracts.responses import EventReading
from contracts.timeline import Segment


class _Output(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every answer struct."""


class PlaceInfo(_Output, frozen=True, kw_only=True):
    """A place as the registry holds it."""

    id: str
    name: str
    kind: str | None
    lat: float | None
    lon: float | None
    parent: str | None
    aliases: list[str]
    precision: str | None


class Frame(_Output, frozen=True, kw_only=True):
    """What every answer about the front names: the policy, the valid time, the known position."""

    policy: str
    policy_version: int
    valid_at: datetime | None
    known_position: int
    """The last commit position the answer takes into account."""


class PlaceState(_Output, frozen=True, kw_only=True):
    """One place and its segment at the valid time."""

    place: PlaceInfo
    segment: Segment


class StatePage(_Output, frozen=True, kw_only=True):
    """The front at a valid time, as known at a position: one page, in place id order."""

    frame: Frame
    items: list[PlaceState]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; null on the last page."""
    next: str | None
    """The relative URL of the next page (this query, ``cursor`` set); null on the last page."""


class GeoPoint(_Output, frozen=True, kw_only=True):
    """A GeoJSON Point: [longitude, latitude]."""

    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float]


class GeoFeature(_Output, frozen=True, kw_only=True):
    """A place as a GeoJSON Feature; its properties carry the state's fields."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: GeoPoint
    properties: dict[str, object]


class GeoState(_Output, frozen=True, kw_only=True):
    """The front as a GeoJSON FeatureCollection; places without a point are listed apart."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[GeoFeature]
    unlocated: list[PlaceState]
    """Places in the answer that have no point: listed, never dropped."""
    frame: Frame
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; null on the last page."""
    next: str | None
    """The relative URL of the next page (this query, ``cursor`` set); null on the last page."""


class AreaGeometry(_Output, frozen=True, kw_only=True):
    """A GeoJSON MultiPolygon (always: one geometry type for GIS layers): polygons of rings
    of [longitude, latitude] in degrees (WGS 84), each polygon's outer ring first."""

    type: Literal["MultiPolygon"] = "MultiPolygon"
    coordinates: list[list[list[tuple[float, float]]]]


class AreaProperties(_Output, frozen=True, kw_only=True):
    """What an area of control says: the reading its places share, and which places."""

    controller: str | None
    """The side its places' segments name; null: no controller."""
    status: str
    status_by: str | None
    """The side encircling or contesting its places, if any."""
    disputed: bool
    """Its places' segments are disputed (or places at one point read differently)."""
    confidence: int
    """The lowest confidence among its places' segments (0..100)."""
    places: list[str]
    """The ids of the places whose cells make it, in id order."""


class AreaFeature(_Output, frozen=True, kw_only=True):
    """One area of control as a GeoJSON Feature: every place reading alike, merged."""

    type: Literal["Feature"] = "Feature"
    id: str
    """``controller/status/status_by/disputed`` (``-`` for null)."""
    geometry: AreaGeometry
    properties: AreaProperties


class GeoAreas(_Output, frozen=True, kw_only=True):
    """The areas of control at a date as known at a position: a GeoJSON FeatureCollection,
    one feature per reading (controller, status, status_by, disputed), estimated from the
    located places (docs/map.md says how, and what the areas do not mean)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[AreaFeature]
    frame: Frame
    bbox: tuple[float, float, float, float] | None
    """The box the areas are clipped to (west, south, east, north), as asked."""
    places: int
    """How many located places the areas are estimated from (those of the box and its
    margin)."""


class PlaceDetail(_Output, frozen=True, kw_only=True):
    """A place, its version, and its segment now (as known now)."""

    place: PlaceInfo
    version: int
    first_position: int
    last_position: int
    frame: Frame
    segment: Segment | None
    """None when the place has no segment at that valid time (no claim yet)."""
    merged_into: str | None = None
    """As known at the frame's position: the place this one is merged into (its events
    belong to that place's timeline, and this one has no segment), or null."""
    merged: tuple[str, ...] = ()
    """As known at the frame's position: the places merged into this one."""


class PlaceTimeline(_Output, frozen=True, kw_only=True):
    """Every segment of a place's timeline as known at a position."""

    place: PlaceInfo
    frame: Frame
    segments: list[Segment]


class EventLink(_Output, frozen=True, kw_only=True):
    """A link between two events about the same place."""

    event: uuid.UUID
    relation: str


class PlaceEvent(_Output, frozen=True, kw_only=True):
    """One event about a place, with its links both ways and whether it is in force."""

    position: int
    id: uuid.UUID
    type: str
    recorded_at: datetime
    source: str
    in_force: bool
    relates_to: list[EventLink]
    linked_from: list[EventLink]
    event: msgspec.Raw
    read_as: EventReading | None = None
    """The event read through the registries as known at the answer's ``known_position``
    (canonical side and display name, the source's registered grade), beside ``event``,
    which stays as stated."""


class PlaceEvents(_Output, frozen=True, kw_only=True):
    """The events about a place up to the known position, in position order (one page)."""

    place: PlaceInfo
    known_position: int
    events: list[PlaceEvent]
    total: int
    """How many events about the place the known position holds (every page together)."""
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; null on the last page."""
    next: str | None
    """The relative URL of the next page (this query, ``cursor`` set); null on the last page."""


ChangedField: TypeAlias = Literal["controller", "status", "status_by", "disputed"]


class Transition(_Output, frozen=True, kw_only=True):
    """One change of a place's reading at a valid instant: the segments on either side.

    A change is a boundary between two consecutive segments of the place's timeline (as
    known at the answer's position) where the controller, the status, the side encircling or
    contesting it, or the disputed flag differs; or the place's first segment (``before``
    null: no claim about the place before ``at``).
    """

    place: PlaceInfo
    at: datetime
    """Where ``after`` starts (and ``before`` ends)."""
    changed: list[ChangedField]
    """What differs between ``before`` and ``after``, in this order: controller, status,
    status_by, disputed (all four when ``before`` is null)."""
    before: Segment | None
    after: Segment


class StateChanges(_Output, frozen=True, kw_only=True):
    """Every change of the front with ``from <= at <= to``, one page, in (place id, ``at``)
    order: each place's changes in valid-time order."""

    frame: Frame
    """``valid_at`` is null: the answer is about the range ``from``..``to``."""
    from_: datetime = msgspec.field(name="from")
    to: datetime
    net: Literal[False] = False
    """Every transition (``net=true`` answers the net form, :class:`StateNetChanges`)."""
    items: list[Transition]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; null on the last page."""
    next: str | None
    """The relative URL of the next page (this query, ``cursor`` set); null on the last page."""


class NetChange(_Output, frozen=True, kw_only=True):
    """A place's net change over a range: its reading before the first change inside the
    range and after the last, whatever happened between."""

    place: PlaceInfo
    first_at: datetime
    """The first change inside the range (``before`` ends there)."""
    last_at: datetime
    """The last change inside the range (``after`` starts there)."""
    transitions: int
    """How many changes the range holds for the place (the every-transition form lists
    them)."""
    changed: list[ChangedField]
    """What differs between ``before`` and ``after`` (never empty: a place that changed and
    changed back is not listed)."""
    before: Segment | None
    """Null: no claim about the place before ``first_at``."""
    after: Segment


class StateNetChanges(_Output, frozen=True, kw_only=True):
    """``net=true``: each place whose reading differs between the start and the end of the
    range, once, in place id order; a page holds at most ``limit`` places."""

    frame: Frame
    from_: datetime = msgspec.field(name="from")
    to: datetime
    net: Literal[True]
    """Always true: told apart from the every-transition form by it alone (an empty page of
    either would otherwise read as both)."""
    items: list[NetChange]
    next_cursor: str | None
    """Pass as ``cursor`` (with ``net=true``) for the next page; null on the last page."""
    next: str | None
    """The relative URL of the next page (this query, ``cursor`` set); null on the last page."""


class RebuildResult(_Output, frozen=True, kw_only=True):
    """What a rebuild did."""

    rows: int
    position: int
    policy: str
    policy_version: int


class Reading(_Output, frozen=True, kw_only=True):
    """What the map shows of a segment."""

    controller: str | None
    status: str
    status_by: str | None
    disputed: bool


class Reread(_Output, frozen=True, kw_only=True):
    """Over a valid interval, the map's reading before and after a commit (null: none)."""

    valid_from: datetime
    valid_to: datetime | None
    before: Reading | None
    after: Reading | None


class HistoryEvent(_Output, frozen=True, kw_only=True):
    """An event of the commit, as an auditor scans it."""

    position: int
    id: uuid.UUID
    type: str
    source: str
    side: str | None
    """As the event stated it."""
    hedge: str
    side_as_known: str | None = None
    """The canonical side ``side`` stands for in the side registry as known at the answer's
    position (the head it was read at)."""
    side_name: str | None = None
    """That side's display name (null: no entry registers it)."""


class HistoryEntry(_Output, frozen=True, kw_only=True):
    """One commit that added events about the place, and what it did to the timeline."""

    commit_position: int
    recorded_at: datetime
    events: list[HistoryEvent]
    removed: list[Segment]
    """The segments this commit replaced (their known range ends at the commit)."""
    added: list[Segment]
    """The segments it put in their place (known from the commit on)."""
    changes: list[Reread]
    """Where the map's reading (controller, status, status_by, disputed) changed."""


class PlaceHistory(_Output, frozen=True, kw_only=True):
    """A place's history, commit by commit, in position order (one page)."""

    place: PlaceInfo
    policy: str
    policy_version: int
    entries: list[HistoryEntry]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; null on the last page."""
    next: str | None
    """The relative URL of the next page (this query, ``cursor`` set); null on the last page."""


class StateExtent(_Output, frozen=True, kw_only=True):
    """The span of the log as known at a position: what a time slider runs over."""

    known_position: int
    events: int
    """How many events the log held at ``known_position``."""
    valid_from: datetime | None
    """The earliest valid time of any of those events (null: no events)."""
    valid_to: datetime | None
    """The end (exclusive) of the latest valid interval among them."""
    first_recorded_at: datetime | None
    """When the first of them was recorded."""
    last_recorded_at: datetime | None
    """When the last of them was recorded (the commit ``known_position`` names)."""
