"""GET /v1/state/areas over HTTP: areas of control estimated from the seed demo's places.

The seed (``demo/seed.ndjson``) goes in through ``POST /v1/events``; the answers come from the
real app on the real database. Each answer is read back as shapely geometries, and once with
GDAL (pyogrio), as QGIS would read it.
"""

from __future__ import annotations

import io
import json
import math
import uuid
from pathlib import Path
from typing import Any, Final

import pyogrio
import pyogrio.raw
import shapely
from litestar import Litestar
from litestar.testing import AsyncTestClient
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from service.api.areas import boundaries
from tests.api.conftest import assert_problem

Client = AsyncTestClient[Litestar]

SEED: Final = Path(__file__).resolve().parents[2] / "demo" / "seed.ndjson"
NDJSON: Final = {"content-type": "application/x-ndjson"}
GEOJSON: Final = "application/geo+json"
GOV: Final = "syrian-government"
MASKANAH: Final = "sy-maskanah"
MASKANAH_POINT: Final = (38.04, 35.96)
ROUNDABOUT: Final = "sy-deir-ezzor-panorama-roundabout"
#: Around Deir Ezzor.
DEIR_EZZOR_BOX: Final = "40.0,35.2,40.25,35.4"


def seed_place(place_id: str) -> dict[str, Any]:
    """The place object the seed gives ``place_id``."""
    for line in SEED.read_text().splitlines():
        event = json.loads(line)
        if event["place"]["id"] == place_id:
            place: dict[str, Any] = event["place"]
            return place
    raise AssertionError(f"{place_id} is not in the seed")


async def seed(client: Client) -> None:
    """Import the whole seed."""
    response = await client.post("/v1/events", content=SEED.read_bytes(), headers=NDJSON)
    assert response.status_code == 201, response.text
    assert response.json()["rejected"] == 0


async def areas(client: Client, **params: str) -> dict[str, Any]:
    """GET /v1/state/areas, which must answer 200 as GeoJSON."""
    response = await client.get("/v1/state/areas", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(GEOJSON)
    body: dict[str, Any] = response.json()
    return body


def shapes(answer: dict[str, Any]) -> dict[str, BaseGeometry]:
    """Each feature's geometry by its id."""
    return {f["id"]: shape(f["geometry"]) for f in answer["features"]}


def holding(answer: dict[str, Any], lon: float, lat: float) -> list[dict[str, Any]]:
    """The properties of the features that cover a point."""
    point = shapely.Point(lon, lat)
    return [f["properties"] for f in answer["features"] if shape(f["geometry"]).covers(point)]


def km2(geometry: BaseGeometry, lat: float) -> float:
    """An area in km² near latitude ``lat`` (a local equirectangular scale)."""
    return float(geometry.area * 110.574 * 111.320 * math.cos(math.radians(lat)))


async def test_maskanah_is_isis_ground_encircled_then_the_governments(client: Client) -> None:
    """On 2017-06-02 the ground around Maskanah is ISIS's, encircled by the government; on
    06-05 it is the government's, controlled: one feature per reading, naming Maskanah among
    its places with the lowest confidence of them, as /v1/state gives Maskanah's segment."""
    await seed(client)
    friday = await areas(client, valid_at="2017-06-02")
    (props,) = holding(friday, *MASKANAH_POINT)
    assert (props["controller"], props["status"], props["status_by"]) == ("isis", "encircled", GOV)
    assert props["places"] == [MASKANAH]
    front = (await client.get("/v1/state", params={"valid_at": "2017-06-02"})).json()
    (maskanah,) = [i["segment"] for i in front["items"] if i["place"]["id"] == MASKANAH]
    assert props["confidence"] == maskanah["confidence"]
    assert friday["frame"]["valid_at"] == "2017-06-02T00:00:00Z"
    assert friday["frame"]["policy"] == front["frame"]["policy"]
    sunday = await areas(client, valid_at="2017-06-05")
    (props,) = holding(sunday, *MASKANAH_POINT)
    assert (props["controller"], props["status"], props["status_by"]) == (GOV, "controlled", None)
    assert MASKANAH in props["places"]
    assert props["disputed"] is False


async def test_a_town_reaches_no_farther_than_its_radius_and_stays_in_its_country(
    client: Client,
) -> None:
    """Maskanah (a town, located exactly) claims no more than a 6 km disc: its area is at
    most that disc's and a point 7 km east of it is nobody's; every area lies inside Syria
    (the seed's places are all Syrian) as the map's Natural Earth boundaries draw it."""
    await seed(client)
    answer = await areas(client, valid_at="2017-06-02")
    by_id = shapes(answer)
    maskanah = by_id["isis/encircled/syrian-government/undisputed"]
    assert 0.9 * math.pi * 36 < km2(maskanah, 35.96) <= math.pi * 36
    seven_km_east = MASKANAH_POINT[0] + 7 / (111.32 * math.cos(math.radians(35.96)))
    assert holding(answer, seven_km_east, MASKANAH_POINT[1]) == []
    syria = boundaries().shapes[boundaries().names.index("Syria")]
    for geometry in by_id.values():
        assert geometry.is_valid
        assert geometry.geom_type == "MultiPolygon"
        assert syria.buffer(1e-9).covers(geometry)


async def test_neighbours_split_the_ground_between_them_without_overlap(client: Client) -> None:
    """Around Deir Ezzor on 06-05 the places lie a few km apart: the areas of different
    readings do not overlap (beyond slivers under a metre wide, where the borders cut in
    Mercator are drawn back in degrees: less than 1,000 m²), and each place's point is in
    the area of its own reading."""
    await seed(client)
    answer = await areas(client, valid_at="2017-06-05")
    features = answer["features"]
    assert len({f["id"] for f in features}) == len(features)
    for i, first in enumerate(features):
        for second in features[i + 1 :]:
            overlap = shape(first["geometry"]).intersection(shape(second["geometry"]))
            assert km2(overlap, 35.3) < 1e-3, (first["id"], second["id"])
    front = (await client.get("/v1/state", params={"valid_at": "2017-06-05"})).json()
    located = [i for i in front["items"] if i["place"]["lat"] is not None]
    assert answer["places"] == len(located)
    for item in located:
        place, segment = item["place"], item["segment"]
        (props,) = holding(answer, place["lon"], place["lat"])
        assert place["id"] in props["places"]
        assert props["controller"] == segment["controller"], place["id"]
        assert props["confidence"] <= segment["confidence"]


async def test_a_disputed_place_has_its_cell_marked_disputed(client: Client) -> None:
    """After Reuters reports the government holding the Panorama roundabout on 06-04 (the seed
    has ISIS capture it that week), the roundabout's ground that day is in a feature marked
    disputed, naming the roundabout; as known at the seed's commit it is not."""
    await seed(client)
    report = {
        "id": str(uuid.uuid4()),
        "type": "control",
        "place": seed_place(ROUNDABOUT),
        "side": GOV,
        "occurred": {"start": "2017-06-04", "precision": "day"},
        "source": {"name": "Reuters", "reliability": "B", "alignment": "neutral"},
        "credibility": 2,
        "hedge": "reported",
    }
    posted = await client.post("/v1/events", json=report)
    assert posted.status_code == 201, posted.text
    place = seed_place(ROUNDABOUT)
    after = await areas(client, valid_at="2017-06-04", bbox=DEIR_EZZOR_BOX)
    (props,) = holding(after, place["lon"], place["lat"])
    assert props["disputed"] is True
    assert ROUNDABOUT in props["places"]
    before = await areas(client, valid_at="2017-06-04", known_at="position:30")
    (props,) = holding(before, place["lon"], place["lat"])
    assert (props["controller"], props["disputed"]) == ("isis", False)
    assert before["frame"]["known_position"] == 30


async def test_a_box_clips_the_areas_of_the_whole_front(client: Client) -> None:
    """With `bbox`, the answer is the whole front's areas cut to the box: the places around
    the box are read too, so a cell inside it is the same as without the box (but for
    slivers under a metre wide along the box's edges, cut in Mercator: under 1,000 m²)."""
    await seed(client)
    whole = shapes(await areas(client, valid_at="2017-06-05"))
    boxed_answer = await areas(client, valid_at="2017-06-05", bbox=DEIR_EZZOR_BOX)
    assert boxed_answer["bbox"] == [40.0, 35.2, 40.25, 35.4]
    boxed = shapes(boxed_answer)
    box = shapely.box(40.0, 35.2, 40.25, 35.4)
    assert boxed
    for key, geometry in boxed.items():
        assert box.buffer(1e-9).covers(geometry)
        expected = whole[key].intersection(box)
        assert km2(geometry.symmetric_difference(expected), 35.3) < 1e-3, key
    # Outside every place's reach: nothing.
    assert (await areas(client, valid_at="2017-06-05", bbox="10,10,11,11"))["features"] == []


async def test_an_empty_front_has_no_areas(client: Client) -> None:
    """Before any report, and on an empty log, the answer is a FeatureCollection with no
    features, from no places."""
    empty = await areas(client)
    assert (empty["type"], empty["features"], empty["places"]) == ("FeatureCollection", [], 0)
    await seed(client)
    before = await areas(client, valid_at="2017-05-01")
    assert (before["features"], before["places"]) == ([], 0)


async def test_gdal_reads_the_areas(client: Client) -> None:
    """GDAL (pyogrio, as QGIS reads GeoJSON) opens the answer: polygons in EPSG:4326, one
    feature per reading, with controller, status and confidence as fields."""
    await seed(client)
    response = await client.get("/v1/state/areas", params={"valid_at": "2017-06-05"})
    assert response.status_code == 200
    count = len(response.json()["features"])
    info = pyogrio.read_info(io.BytesIO(response.content))
    assert info["features"] == count
    assert info["geometry_type"] == "MultiPolygon"
    assert info["crs"] == "EPSG:4326"
    meta, _, geometries, columns = pyogrio.raw.read(io.BytesIO(response.content))
    fields = dict(zip(meta["fields"], columns, strict=True))
    assert {"controller", "status", "status_by", "disputed", "confidence", "places"} <= set(fields)
    assert GOV in set(fields["controller"])
    assert all(shapely.from_wkb(g).is_valid for g in geometries)


async def test_bad_parameters_are_problems_naming_the_field(client: Client) -> None:
    """A valid time, a knowledge position or a box that cannot be read: a 422 problem naming
    the parameter, as /v1/state answers them."""
    bad = {
        "valid_at": "2017-13-01",
        "known_at": "position:x",
        "bbox": "40,35",
    }
    for field, value in bad.items():
        assert_problem(await client.get("/v1/state/areas", params={field: value}), 422, field)
    assert_problem(await client.get("/v1/state/areas", params={"bbox": "41,35,40,36"}), 422, "bbox")
    assert_problem(
        await client.get("/v1/state/areas", params={"bbox": "-181,35,40,36"}), 422, "bbox"
    )


async def test_areas_need_a_key(app: Litestar) -> None:
    """Like /v1/state (anonymous reads off, as with DATABASE_URL): without a key, 401."""
    async with AsyncTestClient(app=app) as anonymous:
        assert_problem(await anonymous.get("/v1/state/areas"), 401)
        assert_problem(await anonymous.get("/v1/state"), 401)
