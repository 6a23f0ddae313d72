"""Areas of control estimated from the located places of the front. Pure.

Each place claims the ground nearer to it than to any other place (a Voronoi partition),
no farther than a radius set by its kind and precision, inside its own country; the cells
of places that read alike (controller, status, the side encircling or contesting, disputed)
are merged into one area. The geometry is GEOS's, through shapely: nothing here computes a
polygon by hand. What the areas mean and what they do not: ``docs/map.md``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, cast

import msgspec
import numpy as np
import numpy.typing as npt
import shapely
from shapely import STRtree
from shapely.geometry.base import BaseGeometry

KIND_RADIUS_KM: Final[dict[str, float]] = {
    "city": 12.0,
    "district": 12.0,
    "town": 6.0,
    "village": 3.0,
    "base": 2.0,
    "road": 2.0,
    "hill": 1.5,
    "roundabout": 1.0,
    "school": 0.5,
}
"""How far a place of each kind reaches, in km, when it is located exactly."""
DEFAULT_RADIUS_KM: Final = 3.0
"""The reach of a place of another kind, or of no kind."""
PRECISION_FLOOR_KM: Final[dict[str, float]] = {"near": 2.0, "district": 10.0, "region": 25.0}
"""The least reach of a place located only this precisely (its point may be this far off)."""
UNDRAWN_PRECISIONS: Final = frozenset({"country"})
"""Places located no better than this claim no ground: their point says nothing local."""
MAX_RADIUS_KM: Final = max(*KIND_RADIUS_KM.values(), *PRECISION_FLOOR_KM.values())
"""No place reaches farther: the margin a box must take to have every neighbour it needs."""

KM_PER_DEGREE_LAT: Final = 110.574
KM_PER_DEGREE_LON_AT_EQUATOR: Final = 111.320
EARTH_RADIUS_KM: Final = 6371.0088
"""The mean radius of the Earth: the sphere of the Mercator projection the cells are cut in."""
SITE_GRID_KM: Final = 0.001
"""Places closer than this (a metre) share one site, as places at one point do."""
QUAD_SEGMENTS: Final = 6
"""A place's circle is a polygon of 4 x this many sides (24: its area is 98.9 % of the
circle's, its edge within 0.9 % of the radius, 54 m for a town)."""
SEGMENT_KM: Final = 2.0
"""Cells' edges are cut to this length before they go back to degrees."""
MAX_LATITUDE: Final = 85.0
"""Points are drawn no nearer the poles than this (Mercator's y grows without bound)."""
NEAR_COUNTRY_DEGREES: Final = 0.1
"""A place whose point falls outside every country (a coast drawn at 1:50m) belongs to the
nearest country no farther than this."""


def reach_km(kind: str | None, precision: str | None) -> float:
    """A place's radius in km: its kind's reach, at least its precision's floor."""
    radius = KIND_RADIUS_KM.get(kind or "", DEFAULT_RADIUS_KM)
    return max(radius, PRECISION_FLOOR_KM.get(precision or "", 0.0))


def margin_degrees(south: float, north: float) -> tuple[float, float]:
    """How far (degrees of longitude, of latitude) beyond a box the places must be read so
    that every cell inside it is complete: the largest reach. A point of the box within a
    place's reach is another place's only when that place is nearer to it, so within the
    largest reach of the box too."""
    widest = max(abs(south), abs(north), 0.0)
    cos = max(math.cos(math.radians(min(widest + 1.0, 89.0))), 0.01)
    lat = MAX_RADIUS_KM / KM_PER_DEGREE_LAT
    return MAX_RADIUS_KM / (KM_PER_DEGREE_LON_AT_EQUATOR * cos), lat


@dataclass(frozen=True, slots=True)
class Located:
    """A place with a point and its reading at the asked time."""

    id: str
    lon: float
    lat: float
    kind: str | None
    precision: str | None
    controller: str | None
    status: str
    status_by: str | None
    disputed: bool
    confidence: int


@dataclass(frozen=True, slots=True)
class Area:
    """The merged cells of the places that read alike: their reading, the places, the lowest
    confidence among them, and the shape in lon/lat (a Polygon or MultiPolygon)."""

    controller: str | None
    status: str
    status_by: str | None
    disputed: bool
    confidence: int
    places: tuple[str, ...]
    geometry: shapely.MultiPolygon


@dataclass(frozen=True, slots=True)
class Boundaries:
    """Countries' outlines (lon/lat) and an index over them."""

    names: tuple[str, ...]
    shapes: tuple[BaseGeometry, ...]
    tree: STRtree

    @classmethod
    def of(cls, countries: Iterable[tuple[str, BaseGeometry]]) -> Boundaries:
        """Boundaries from (name, outline) pairs; empty outlines are left out."""
        kept = [(name, shape) for name, shape in countries if not shape.is_empty]
        shapes = tuple(shape for _, shape in kept)
        return cls(tuple(name for name, _ in kept), shapes, STRtree(shapes))

    def country_of(self, lons: npt.NDArray[np.float64], lats: npt.NDArray[np.float64]) -> list[int]:
        """Each point's country (its index), or -1 when no country is near enough."""
        points = _points(lons, lats)
        found = [-1] * len(points)
        inside = self.tree.query(points, predicate="within")
        for point, country in zip(inside[0].tolist(), inside[1].tolist(), strict=True):
            if found[point] == -1 or country < found[point]:
                found[point] = country
        missing = [i for i, country in enumerate(found) if country == -1]
        if missing:
            near = self.tree.query_nearest(
                points[missing], max_distance=NEAR_COUNTRY_DEGREES, all_matches=False
            )
            for point, country in zip(near[0].tolist(), near[1].tolist(), strict=True):
                found[missing[point]] = country
        return found


def _points(xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64]) -> npt.NDArray[np.object_]:
    """An array of shapely Points (shapely's types allow a single Point for scalars)."""
    return cast("npt.NDArray[np.object_]", shapely.points(xs, ys))


class _Topology(msgspec.Struct, frozen=True):
    arcs: list[list[tuple[int, int]]]
    objects: dict[str, _Collection]
    transform: _Transform


class _Transform(msgspec.Struct, frozen=True):
    scale: tuple[float, float]
    translate: tuple[float, float]


class _Collection(msgspec.Struct, frozen=True):
    geometries: list[_TopoGeometry]


class _Name(msgspec.Struct, frozen=True):
    name: str = ""


class _TopoGeometry(msgspec.Struct, frozen=True):
    type: str | None = None
    arcs: msgspec.Raw = msgspec.Raw(b"[]")
    id: str | None = None
    properties: _Name = _Name()


_rings: Final = msgspec.json.Decoder(list[list[int]])
_polygons_arcs: Final = msgspec.json.Decoder(list[list[list[int]]])


def countries_from_topojson(data: bytes, collection: str = "countries") -> Boundaries:
    """The countries of a quantized TopoJSON file (world-atlas's ``countries-50m.json``).

    TopoJSON stores each shared border once as an arc of delta-encoded integers; a ring
    lists its arcs by index (``~i``: arc i reversed). Decoding it is reading a file format,
    the polygons themselves are shapely's, made valid by GEOS.
    """
    topology = msgspec.json.decode(data, type=_Topology)
    (sx, sy), (tx, ty) = topology.transform.scale, topology.transform.translate
    arcs: list[npt.NDArray[np.float64]] = []
    for arc in topology.arcs:
        steps = np.cumsum(np.asarray(arc, dtype=np.float64), axis=0)
        arcs.append(steps * (sx, sy) + (tx, ty))

    def ring(indices: list[int]) -> npt.NDArray[np.float64]:
        pieces = [arcs[i] if i >= 0 else arcs[~i][::-1] for i in indices]
        joined = [pieces[0], *(piece[1:] for piece in pieces[1:])]
        return np.concatenate(joined)

    def polygon(rings: list[list[int]]) -> BaseGeometry:
        coords = [ring(r) for r in rings]
        return shapely.make_valid(shapely.Polygon(coords[0], coords[1:]))

    countries: list[tuple[str, BaseGeometry]] = []
    for item in topology.objects[collection].geometries:
        if item.type == "Polygon" and item.arcs:
            shape = polygon(_rings.decode(item.arcs))
        elif item.type == "MultiPolygon" and item.arcs:
            shape = shapely.union_all([polygon(p) for p in _polygons_arcs.decode(item.arcs)])
        else:
            continue
        name = item.properties.name or item.id or ""
        countries.append((name, shapely.make_valid(shape)))
    return Boundaries.of(countries)


def _mercator(
    lons: npt.NDArray[np.float64], lats: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Spherical Mercator, in km: one projection for every answer, so that a place's cell
    never depends on which other places far away were read with it (a box and the whole
    front agree), and conformal, so that bisectors and circles keep their shape locally."""
    phi = np.radians(np.clip(lats, -MAX_LATITUDE, MAX_LATITUDE))
    return EARTH_RADIUS_KM * np.radians(lons), EARTH_RADIUS_KM * np.log(np.tan(np.pi / 4 + phi / 2))


def _degrees(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Mercator km back to longitude and latitude."""
    lon = np.degrees(coords[:, 0] / EARTH_RADIUS_KM)
    lat = np.degrees(2 * np.arctan(np.exp(coords[:, 1] / EARTH_RADIUS_KM)) - np.pi / 2)
    return np.column_stack([lon, lat])


def _reading(place: Located) -> tuple[str | None, str, str | None]:
    return (place.controller, place.status, place.status_by)


def _sort_key(key: tuple[str | None, str, str | None, bool]) -> tuple[object, ...]:
    controller, status, status_by, disputed = key
    return (controller is None, controller or "", status, status_by or "", disputed)


def areas(
    places: Sequence[Located],
    boundaries: Boundaries | None,
    box: tuple[float, float, float, float] | None = None,
) -> list[Area]:
    """The areas of control the places imply, clipped to ``box`` (west, south, east, north).

    Places at the same point share one cell: it takes the reading of the most confident of
    them (then the first by id), and is marked disputed when they read differently.
    """
    drawn = sorted((p for p in places if p.precision not in UNDRAWN_PRECISIONS), key=lambda p: p.id)
    if not drawn:
        return []
    # One site per distinct point, points closer than SITE_GRID_KM being one (GEOS's Voronoi
    # fails on points a hair apart).
    plon = np.array([p.lon for p in drawn], dtype=np.float64)
    plat = np.array([p.lat for p in drawn], dtype=np.float64)
    px, py = _mercator(plon, plat)
    snapped = zip(
        np.round(px / SITE_GRID_KM).astype(np.int64).tolist(),
        np.round(py / SITE_GRID_KM).astype(np.int64).tolist(),
        strict=True,
    )
    sites: dict[tuple[int, int], list[Located]] = {}
    first: dict[tuple[int, int], int] = {}
    for index, (place, cell) in enumerate(zip(drawn, snapped, strict=True)):
        sites.setdefault(cell, []).append(place)
        first.setdefault(cell, index)
    where = list(first.values())
    lons, lats, xs, ys = plon[where], plat[where], px[where], py[where]
    points = list(sites)
    # A km is 1/cos(latitude) Mercator km at the place: each circle is true to scale there.
    reach = np.array(
        [max(reach_km(p.kind, p.precision) for p in group) for group in sites.values()],
        dtype=np.float64,
    ) / np.cos(np.radians(np.clip(lats, -MAX_LATITUDE, MAX_LATITUDE)))
    centres = _points(xs, ys)
    groups = list(sites.values())
    # With a box, only the sites whose reach meets it are cut and merged (the others still
    # bound their neighbours' cells), each cell cut to the box in Mercator: a box of
    # longitudes and latitudes is a rectangle there too.
    wanted = np.arange(len(points))
    clip = None
    if box is not None:
        (west, east), (south, north) = _mercator(np.array(box[0::2]), np.array(box[1::2]))
        wanted = np.flatnonzero(
            (xs + reach >= west)
            & (xs - reach <= east)
            & (ys + reach >= south)
            & (ys - reach <= north)
        )
        clip = shapely.box(float(west), float(south), float(east), float(north))
    circles = shapely.buffer(centres[wanted], reach[wanted], quad_segs=QUAD_SEGMENTS)
    if len(points) == 1:
        cells = circles
    else:
        margin = 2 * float(reach.max())
        frame = shapely.box(
            float(xs.min()) - margin,
            float(ys.min()) - margin,
            float(xs.max()) + margin,
            float(ys.max()) + margin,
        )
        diagram = shapely.voronoi_polygons(
            shapely.multipoints(centres), extend_to=frame, ordered=True
        )
        cells = shapely.intersection(shapely.get_parts(diagram)[wanted], circles)
    if clip is not None:
        shapely.prepare(clip)
        crossing = ~shapely.contains_properly(clip, cells)
        cells[crossing] = shapely.intersection(cells[crossing], clip)

    # Straight edges in Mercator are slightly curved in degrees: they are cut short before
    # the way back, so that two areas' common border is drawn the same (within millimetres)
    # from either side.
    cells = shapely.transform(shapely.segmentize(cells, SEGMENT_KM), _degrees)
    if boundaries is not None:
        countries = boundaries.country_of(lons[wanted], lats[wanted])
        cells = _clip_to_countries(cells, boundaries, countries)

    # (reading, disputed) -> its cells, and its places (those whose cell is not empty).
    pieces: dict[tuple[str | None, str, str | None, bool], list[BaseGeometry]]
    pieces = defaultdict(list)
    members: dict[tuple[str | None, str, str | None, bool], list[Located]] = defaultdict(list)
    for cell, site in zip(cells.tolist(), wanted.tolist(), strict=True):
        if cell.is_empty:
            continue
        group = groups[site]
        leader = min(group, key=lambda p: (-p.confidence, p.id))
        disagree = len({_reading(p) for p in group}) > 1
        key = (*_reading(leader), leader.disputed or disagree or any(p.disputed for p in group))
        pieces[key].append(cell)
        members[key].extend(group)

    found: list[Area] = []
    for key in sorted(pieces, key=_sort_key):
        shape = _polygons(shapely.disjoint_subset_union_all(pieces[key]))
        if shape.is_empty:
            continue
        group = sorted(members[key], key=lambda p: p.id)
        controller, status, status_by, disputed = key
        found.append(
            Area(
                controller=controller,
                status=status,
                status_by=status_by,
                disputed=disputed,
                confidence=min(p.confidence for p in group),
                places=tuple(p.id for p in group),
                geometry=shape,
            )
        )
    return found


def _clip_to_countries(
    cells: npt.NDArray[np.object_], boundaries: Boundaries, countries: list[int]
) -> npt.NDArray[np.object_]:
    """Each cell cut to its place's country (left whole when the place has none). Only the
    cells that cross a border are cut: the others are found inside theirs first (prepared
    geometries), which costs far less than an intersection."""
    cells = cells.copy()
    for country in sorted(set(countries) - {-1}):
        outline = boundaries.shapes[country]
        shapely.prepare(outline)
        mine = np.array([i for i, c in enumerate(countries) if c == country], dtype=np.intp)
        inside = shapely.contains_properly(outline, cells[mine])
        crossing = mine[~inside]
        if len(crossing):
            cells[crossing] = shapely.intersection(cells[crossing], outline)
    return cells


def _polygons(shape: BaseGeometry) -> shapely.MultiPolygon:
    """Only the polygonal parts (an intersection can leave lines or points where shapes
    touch), as one MultiPolygon (empty when nothing is left)."""
    if isinstance(shape, shapely.MultiPolygon):
        return shape
    if isinstance(shape, shapely.Polygon):
        return shapely.MultiPolygon([shape]) if not shape.is_empty else shapely.MultiPolygon()
    parts = [
        part
        for part in shapely.get_parts(shape)
        if isinstance(part, shapely.Polygon | shapely.MultiPolygon)
    ]
    return shapely.MultiPolygon([p for part in parts for p in shapely.get_parts(part)])
