"""service.domain.areas: areas of control from located places (Voronoi cells, limited by a
radius, clipped to the country, merged by reading). Pure: no database."""

from __future__ import annotations

import math
from typing import Final

import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from service.api.areas import boundaries
from service.domain.areas import Area, Located, areas, reach_km

KM_LON_AT_35: Final = 111.32 * math.cos(math.radians(35.0))


def place(
    ident: str,
    lon: float,
    lat: float,
    controller: str | None = "isis",
    *,
    kind: str | None = "town",
    precision: str | None = None,
    status: str = "controlled",
    disputed: bool = False,
    confidence: int = 50,
) -> Located:
    """A located place with its reading."""
    return Located(
        id=ident,
        lon=lon,
        lat=lat,
        kind=kind,
        precision=precision,
        controller=controller,
        status=status,
        status_by=None,
        disputed=disputed,
        confidence=confidence,
    )


def by_controller(found: list[Area]) -> dict[str | None, Area]:
    """The areas by controller (one reading each in these tests)."""
    return {area.controller: area for area in found}


def km2(area: Area, lat: float = 35.0) -> float:
    """An area's size in km² near ``lat``."""
    return float(area.geometry.area * 110.574 * 111.32 * math.cos(math.radians(lat)))


def test_a_lone_town_claims_its_disc() -> None:
    """One town, located exactly: a 6 km disc (within the polygon's approximation)."""
    (only,) = areas([place("a", 38.0, 35.0)], None)
    assert only.places == ("a",)
    assert 0.96 * math.pi * 36 < km2(only) <= math.pi * 36 * 1.01
    assert only.geometry.geom_type == "MultiPolygon"


def test_two_towns_split_the_ground_at_the_bisector() -> None:
    """Two towns 8 km apart, different sides: each holds its half of the overlap of their
    discs; a point 3 km from the first towards the second is the first's, 5 km the second's."""
    a = place("a", 38.0, 35.0, "isis")
    b = place("b", 38.0 + 8 / KM_LON_AT_35, 35.0, "sdf")
    found = by_controller(areas([a, b], None))
    assert found.keys() == {"isis", "sdf"}
    three = shapely.Point(38.0 + 3 / KM_LON_AT_35, 35.0)
    five = shapely.Point(38.0 + 5 / KM_LON_AT_35, 35.0)
    assert found["isis"].geometry.covers(three)
    assert not found["sdf"].geometry.covers(three)
    assert found["sdf"].geometry.covers(five)
    assert found["isis"].geometry.intersection(found["sdf"].geometry).area < 1e-9


def test_places_of_one_reading_merge_and_keep_the_lowest_confidence() -> None:
    """Two neighbouring villages held by one side are one area naming both, with the lower
    confidence; a different status is another area."""
    found = areas(
        [
            place("a", 38.0, 35.0, "isis", kind="village", confidence=70),
            place("b", 38.03, 35.0, "isis", kind="village", confidence=40),
            place("c", 38.06, 35.0, "isis", kind="village", status="encircled"),
        ],
        None,
    )
    assert [(a.status, a.places, a.confidence) for a in found] == [
        ("controlled", ("a", "b"), 40),
        ("encircled", ("c",), 50),
    ]
    assert len(shapely.get_parts(found[0].geometry)) == 1  # the two cells touch: one polygon


def test_reach_follows_kind_and_precision() -> None:
    """A city reaches 12 km, a school 0.5 km; a point placed only `near` at least 2 km, a
    district 10, a region 25; a place located only to its country claims nothing."""
    assert reach_km("city", None) == 12.0
    assert reach_km("school", "exact") == 0.5
    assert reach_km("school", "near") == 2.0
    assert reach_km("town", "district") == 10.0
    assert reach_km(None, "region") == 25.0
    (region,) = areas([place("r", 38.0, 35.0, precision="region")], None)
    assert 0.96 * math.pi * 625 < km2(region) <= math.pi * 625 * 1.01
    assert areas([place("c", 38.0, 35.0, precision="country")], None) == []


def test_places_at_one_point_that_read_differently_make_a_disputed_cell() -> None:
    """Two places at the same point held by different sides: one cell, in the reading of the
    more confident, marked disputed, naming both."""
    (cell,) = areas(
        [place("a", 38.0, 35.0, "isis", confidence=30), place("b", 38.0, 35.0, "sdf")], None
    )
    assert (cell.controller, cell.disputed, cell.places) == ("sdf", True, ("a", "b"))


def test_a_cell_stops_at_its_country_border() -> None:
    """Jarabulus's city disc (12 km) would cross into Turkey, 2 km north: its area stays in
    Syria, and a Turkish town across the border keeps its side of it."""
    countries = boundaries()
    syria = countries.shapes[countries.names.index("Syria")]
    turkey = countries.shapes[countries.names.index("Turkey")]
    jarabulus = place("jarabulus", 38.011, 36.817, "sdf", kind="city")
    karkamis = place("karkamis", 37.998, 36.835, None, status="unknown")
    found = by_controller(areas([jarabulus, karkamis], countries))
    assert syria.buffer(1e-9).covers(found["sdf"].geometry)
    assert turkey.buffer(1e-9).covers(found[None].geometry)
    unclipped = by_controller(areas([jarabulus], None))["sdf"]
    assert found["sdf"].geometry.area < unclipped.geometry.area


def test_a_box_clips_the_areas() -> None:
    """With a box, every area lies inside it."""
    found = areas([place("a", 38.0, 35.0, kind="city")], None, (38.0, 35.0, 38.2, 35.2))
    (only,) = found
    assert shapely.box(38.0, 35.0, 38.2, 35.2).buffer(1e-12).covers(only.geometry)


points = st.tuples(
    st.floats(min_value=38.0, max_value=38.4), st.floats(min_value=35.0, max_value=35.4)
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            points, st.sampled_from(["isis", "sdf", None]), st.sampled_from(["town", "hill"])
        ),
        min_size=1,
        max_size=25,
    )
)
def test_areas_partition_the_reach_of_the_places(
    drawn: list[tuple[tuple[float, float], str | None, str]],
) -> None:
    """Whatever the places: areas of different readings do not overlap, each lies within its
    places' discs, and each place's point lies in the area that names it."""
    located = [
        place(f"p{i}", lon, lat, controller, kind=kind)
        for i, ((lon, lat), controller, kind) in enumerate(drawn)
    ]
    found = areas(located, None)
    for i, first in enumerate(found):
        for second in found[i + 1 :]:
            assert km2_of(first.geometry.intersection(second.geometry)) < 1e-3
    for area in found:
        assert area.geometry.is_valid
        named = [p for p in located if p.id in area.places]
        discs = shapely.union_all(
            [
                shapely.Point(p.lon, p.lat).buffer(
                    1.01 * reach_km(p.kind, None) / KM_LON_AT_35 * 1.05
                )
                for p in named
            ]
        )
        assert km2_of(area.geometry.difference(discs)) < 1e-3
    by_place = {p: area for area in found for p in area.places}
    for p in located:
        at_point = [q for q in located if (q.lon, q.lat) == (p.lon, p.lat)]
        if len({q.controller for q in at_point}) == 1:
            assert by_place[p.id].geometry.buffer(1e-9).covers(shapely.Point(p.lon, p.lat))


def km2_of(geometry: shapely.Geometry) -> float:
    """A shape's size in km² near 35° N."""
    return float(shapely.area(geometry) * 110.574 * KM_LON_AT_35)
