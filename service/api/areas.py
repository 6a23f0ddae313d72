"""``GET /v1/state/areas``: areas of control estimated from the located places.

The places and their segments are read as ``/v1/state`` reads them (the same parameters, the
same checks); the geometry is ``service.domain.areas`` (shapely/GEOS), computed in a worker
thread so that the event loop keeps serving meanwhile. The countries it clips to are the
boundaries the map page ships (``static/data/world-atlas-2.0.2``), read once.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Final, cast

import anyio.to_thread
import msgspec
import shapely
from litestar import Controller, Response, get

from contracts.front import Frame, GeoAreas
from service.api import parameters
from service.api.caching import PINNABLE
from service.api.deps import ServicesDep
from service.api.front import BAD_PARAMETER, GEOJSON, _frame
from service.api.map import STATIC
from service.api.parameters import BBox, KnownAt, ValidAt
from service.domain import areas as geometry
from service.projections.reads import StateQuery
from service.query import BBox as Box

COUNTRIES: Final = STATIC / "data" / "world-atlas-2.0.2" / "countries-50m.json"
"""Natural Earth 1:50m countries, as the map page draws them (docs/map.md)."""


@functools.cache
def boundaries() -> geometry.Boundaries:
    """The countries, decoded on first use (about 0.3 s) and kept for the process."""
    return geometry.countries_from_topojson(COUNTRIES.read_bytes())


class _FeatureWire(msgspec.Struct, frozen=True, kw_only=True):
    """:class:`contracts.front.AreaFeature` as it is encoded: the geometry GEOS's GeoJSON."""

    type: str = "Feature"
    id: str
    geometry: msgspec.Raw
    properties: dict[str, object]


class _AreasWire(msgspec.Struct, frozen=True, kw_only=True):
    """:class:`contracts.front.GeoAreas` as it is encoded (same fields, same order)."""

    type: str = "FeatureCollection"
    features: list[_FeatureWire]
    frame: Frame
    bbox: tuple[float, float, float, float] | None
    places: int


def _feature(area: geometry.Area) -> _FeatureWire:
    parts = (
        area.controller or "-",
        area.status,
        area.status_by or "-",
        "disputed" if area.disputed else "undisputed",
    )
    return _FeatureWire(
        id="/".join(parts),
        geometry=msgspec.Raw(shapely.to_geojson(area.geometry).encode()),
        properties={
            "controller": area.controller,
            "status": area.status,
            "status_by": area.status_by,
            "disputed": area.disputed,
            "confidence": area.confidence,
            "places": list(area.places),
        },
    )


def _estimate(
    located: list[geometry.Located], corners: tuple[float, float, float, float] | None
) -> list[geometry.Area]:
    """The areas (in a worker thread: the boundaries' first decoding included)."""
    return geometry.areas(located, boundaries(), corners)


def _read_box(box: Box | None) -> Box | None:
    """The box the places are read from: the asked box and the margin its cells need."""
    if box is None:
        return None
    dlon, dlat = geometry.margin_degrees(box.south, box.north)
    return Box(
        west=max(-180.0, box.west - dlon),
        south=max(-90.0, box.south - dlat),
        east=min(180.0, box.east + dlon),
        north=min(90.0, box.north + dlat),
    )


class AreasController(Controller):
    """Areas of control: the front drawn as ground, not as points."""

    tags = ["front"]  # noqa: RUF012 (Litestar reads a plain class attribute)

    @get(
        "/v1/state/areas",
        operation_id="getStateAreas",
        summary="Areas of control at a date, as known at a position (GeoJSON)",
        description=(
            "An estimate of the ground each side holds at `valid_at` as known at `known_at`, "
            "from the located places' segments: each place claims the ground nearer to it "
            "than to any other place (a Voronoi partition), no farther than a radius set by "
            "its kind and precision (a city 12 km, a town 6 km, a village 3 km, a hill 1.5 km; "
            "at least 2 km when located `near`, 10 km `district`, 25 km `region`; places "
            "located only to a `country` claim none), inside its own country (Natural Earth "
            "1:50m). The cells of places that read alike (controller, status, status_by, "
            "disputed) are merged into one feature, whose properties name the places and "
            "the lowest confidence among them. With `bbox`, the areas are clipped to it (the "
            "places around it within the largest radius are read too, so the areas "
            "inside are those of the whole front). An estimate from point reports, never a "
            "surveyed line."
        ),
        responses=BAD_PARAMETER,
        media_type=GEOJSON,
        opt=PINNABLE,
    )
    async def areas(
        self,
        services: ServicesDep,
        valid_at: ValidAt = None,
        known_at: KnownAt = None,
        bbox: BBox = None,
    ) -> Response[GeoAreas]:
        """The areas of control as a GeoJSON FeatureCollection."""
        moment = parameters.valid_time(valid_at, "valid_at") if valid_at else datetime.now(UTC)
        box = parameters.bbox(bbox)
        rows_at, states = await services.front.read_at(
            parameters.known_at(known_at),
            lambda at: services.front.whole_state(
                StateQuery(valid_at=moment, known_position=at.position, bbox=_read_box(box))
            ),
        )
        located = [
            geometry.Located(
                id=s.place.id,
                lon=s.place.lon,
                lat=s.place.lat,
                kind=s.place.kind,
                precision=s.place.precision,
                controller=s.segment.controller,
                status=s.segment.status,
                status_by=s.segment.status_by,
                disputed=s.segment.disputed,
                confidence=s.segment.confidence,
            )
            for s in states
            if s.place.lon is not None and s.place.lat is not None
        ]
        corners = (box.west, box.south, box.east, box.north) if box is not None else None
        found = await anyio.to_thread.run_sync(_estimate, located, corners)
        answer = _AreasWire(
            features=[_feature(area) for area in found],
            frame=_frame(moment, rows_at),
            bbox=corners,
            places=len(located),
        )
        # Encoded as it is: the same fields as GeoAreas, the geometries as GEOS wrote them.
        return Response(cast("GeoAreas", answer), media_type=GEOJSON)
