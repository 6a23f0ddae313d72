"""The demo seed over HTTP: the South Front report of 5 June 2017, imported and read back.

``demo/seed.ndjson`` is posted as an NDJSON import through the real app; the answers about the
front must tell the article's story (``demo/README.md`` lists the events).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from contracts.events import event_decoder

Client = AsyncTestClient[Litestar]

SEED: Final = Path(__file__).resolve().parents[2] / "demo" / "seed.ndjson"
NDJSON: Final = {"content-type": "application/x-ndjson"}
GEOJSON: Final = "application/geo+json"
GOV: Final = "syrian-government"

MASKANAH: Final = "sy-maskanah"
ROUNDABOUT: Final = "sy-deir-ezzor-panorama-roundabout"
ZKUF: Final = "sy-al-zkuf"
TAL_UMM_ABBOUD: Final = "sy-deir-ezzor-tal-umm-abboud"
TAL_SYRIATEL: Final = "sy-deir-ezzor-tal-syriatel"

#: The seed's events, by id.
SEED_EVENTS: Final[dict[str, dict[str, Any]]] = {
    event["id"]: event
    for event in (json.loads(line) for line in SEED.read_text().splitlines() if line.strip())
}


@pytest.fixture
async def seeded(client: Client) -> Client:
    """The client, with the whole seed imported as NDJSON; with no side registry loaded,
    the import lists every side the seed names as unmapped, with its events."""
    response = await client.post("/v1/events", content=SEED.read_bytes(), headers=NDJSON)
    assert response.status_code == 201, response.text
    result = response.json()
    unmapped = result.pop("unmapped_sides")
    assert result == {
        "accepted": len(SEED_EVENTS),
        "duplicate": 0,
        "rejected": 0,
        "errors": [],
        "last_position": len(SEED_EVENTS),
        "flagged": 0,
        "flags": [],
        "unmapped": len(unmapped),
    }
    named: dict[str, int] = {}
    for event in SEED_EVENTS.values():
        for name in dict.fromkeys((event.get("side"), event.get("opponent"))):
            if name is not None:
                named[name] = named.get(name, 0) + 1
    assert {u["side"]: u["events"] for u in unmapped} == named
    return client


async def get_json(client: Client, path: str, **params: str) -> dict[str, Any]:
    """GET an answer that must be a 200; its JSON body."""
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def segment_of(client: Client, place: str, valid_at: str) -> dict[str, Any] | None:
    """The place's segment at ``valid_at`` from /v1/places/{id}, checked against /v1/state."""
    detail = await get_json(client, f"/v1/places/{place}", valid_at=valid_at)
    front = await get_json(client, "/v1/state", valid_at=valid_at)
    in_state = {item["place"]["id"]: item["segment"] for item in front["items"]}
    assert in_state.get(place) == detail["segment"], (place, valid_at)
    segment: dict[str, Any] | None = detail["segment"]
    return segment


def control(segment: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """A segment's controller, status and status_by."""
    if segment is None:
        return None
    return segment["controller"], segment["status"], segment["status_by"]


async def test_importing_the_seed_twice_is_idempotent(seeded: Client) -> None:
    """The seed's ids are fixed: a second import stores nothing and counts every line as a
    duplicate."""
    again = await seeded.post("/v1/events", content=SEED.read_bytes(), headers=NDJSON)
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (0, len(SEED_EVENTS), 0)
    assert body["last_position"] == len(SEED_EVENTS)


async def test_maskanah_is_held_by_isis_and_encircled_then_taken_by_the_government(
    seeded: Client,
) -> None:
    """Late on Friday 06-02 ISIS holds Maskanah, encircled by the government; from Saturday
    06-03 the government controls it (and keeps it: nothing later changes it)."""
    friday = await segment_of(seeded, MASKANAH, "2017-06-02")
    assert control(friday) == ("isis", "encircled", GOV)
    assert await segment_of(seeded, MASKANAH, "2017-06-02T23:59:59Z") == friday
    for valid_at in ("2017-06-03", "2017-06-04T12:00:00+03:00", "2017-06-05", "2017-07-01"):
        later = await segment_of(seeded, MASKANAH, valid_at)
        assert control(later) == (GOV, "controlled", None), valid_at
        assert later is not None
        assert later["valid_from"] == "2017-06-03T00:00:00Z"
    # Before the first report there is no segment: Maskanah is absent from the front.
    assert await segment_of(seeded, MASKANAH, "2017-06-01") is None
    encircled = await get_json(seeded, "/v1/state", valid_at="2017-06-02", status="encircled")
    assert [item["place"]["id"] for item in encircled["items"]] == [MASKANAH]


async def test_maskanahs_changes_in_early_june_are_its_encirclement_then_its_capture(
    seeded: Client,
) -> None:
    """README's example: from 06-01 to 06-06, Maskanah's changes are its first report on
    06-02 (from no segment to ISIS's, encircled by the government) and the government's
    capture on 06-03, each with since when its controller holds the place; nothing after (its
    reading at the two ends alone would hide the encirclement)."""
    answer = await get_json(
        seeded, "/v1/state/changes", **{"from": "2017-06-01", "to": "2017-06-06"}, place=MASKANAH
    )
    assert [
        (i["at"], i["changed"], control(i["before"]), control(i["after"])) for i in answer["items"]
    ] == [
        ("2017-06-02T00:00:00Z", ["controller", "status", "status_by", "disputed"], None,
         ("isis", "encircled", GOV)),
        ("2017-06-03T00:00:00Z", ["controller", "status", "status_by"],
         ("isis", "encircled", GOV), (GOV, "controlled", None)),
    ]  # fmt: skip
    # ISIS holds it from its first report, the government from its capture.
    assert [i["after"]["held_since"] for i in answer["items"]] == [
        "2017-06-02T00:00:00Z",
        "2017-06-03T00:00:00Z",
    ]
    assert answer["next_cursor"] is None
    assert answer["frame"]["known_position"] == len(SEED_EVENTS)


async def test_panorama_roundabout_falls_to_isis_and_al_zkuf_is_a_coalition_base(
    seeded: Client,
) -> None:
    """ISIS captured the Panorama roundabout in early June (week precision): ISIS controls it
    on 06-05; the US-led coalition's base at Al-Zkuf is controlled by ``us-coalition``."""
    roundabout = await segment_of(seeded, ROUNDABOUT, "2017-06-05")
    assert control(roundabout) == ("isis", "controlled", None)
    assert roundabout is not None
    assert roundabout["events"] == ["db39f392-109f-5f00-a747-541cca32fe3d"]
    zkuf = await segment_of(seeded, ZKUF, "2017-06-05")
    assert control(zkuf) == ("us-coalition", "controlled", None)
    place = (await get_json(seeded, f"/v1/places/{ZKUF}", valid_at="2017-06-05"))["place"]
    assert (place["kind"], place["lat"], place["lon"]) == ("base", 33.8, 39.3)
    by_side = await get_json(seeded, "/v1/state", valid_at="2017-06-05", side="us-coalition")
    assert [item["place"]["id"] for item in by_side["items"]] == [ZKUF]


@pytest.mark.parametrize("place", [TAL_UMM_ABBOUD, TAL_SYRIATEL])
async def test_the_hills_where_fighting_is_ongoing_are_contested(
    seeded: Client, place: str
) -> None:
    """ "A fierce fighting is ongoing in Tal Umm Abboud and Tal SyriaTel": during the clash
    (06-03 to 06-05) each hill is ``contested`` by ISIS, in /v1/places and in /v1/state.

    A clash is a claim about the place's status (DESIGN section 2: "claim: what an event
    asserts about a place's control or status"; rule 8: ``contested`` during a clash
    interval), so the hills' first claim is the clash and they have a segment from 06-03.
    """
    segment = await segment_of(seeded, place, "2017-06-04")
    assert segment is not None, f"{place} has no segment at 2017-06-04: absent from the front"
    assert (segment["status"], segment["status_by"]) == ("contested", "isis")
    contested = await get_json(seeded, "/v1/state", valid_at="2017-06-04", status="contested")
    assert place in [item["place"]["id"] for item in contested["items"]]


@pytest.mark.parametrize(
    ("place", "event_id", "killed", "source"),
    [
        ("sy-abbasiya", "fc3d572e-83d4-51c3-ba85-c61075130d16", 21,
         "ISIS (claim relayed by South Front)"),
        ("sy-al-gharb-hills", "ae4e0bfd-7204-530e-9bd3-e6a8644edfd7", 14, "South Front"),
    ],
)  # fmt: skip
async def test_casualty_claims_are_listed_and_change_no_control(
    seeded: Client, place: str, event_id: str, killed: int, source: str
) -> None:
    """The casualty claims (21 claimed by ISIS at Abbasiya, 14 reported at Al-Gharb hills)
    are listed on their place's /events with their own source and figure, in force, and
    change no control: the place has no segment at any time."""
    answer = await get_json(seeded, f"/v1/places/{place}/events")
    (listed,) = answer["events"]
    assert (listed["id"], listed["type"], listed["source"]) == (event_id, "casualties", source)
    assert listed["in_force"] is True
    assert listed["event"]["casualties"]["killed"] == killed
    # The stored event is the seed's line (as the contract reads both).
    assert event_decoder.decode(json.dumps(listed["event"])) == event_decoder.decode(
        json.dumps(SEED_EVENTS[event_id])
    )
    timeline = await get_json(seeded, f"/v1/places/{place}/timeline")
    assert timeline["segments"] == []
    for valid_at in ("2017-05-30", "2017-06-05"):
        assert await segment_of(seeded, place, valid_at) is None


async def test_casualties_beside_other_events_leave_control_as_it_was(seeded: Client) -> None:
    """Maskanah's events are all listed in position order, and its timeline is built from
    the control and status events alone: no casualty or other informational event is among
    the events any of its segments cites."""
    answer = await get_json(seeded, f"/v1/places/{MASKANAH}/events")
    assert [e["type"] for e in answer["events"]] == [
        "control",
        "encirclement",
        "capture",
        "withdrawal",
    ]
    assert all(e["in_force"] for e in answer["events"])
    informational = {"casualties", "equipment_loss", "strike", "advance"}
    cited = {
        event_id
        for item in (await get_json(seeded, "/v1/state", valid_at="2017-06-05"))["items"]
        for event_id in item["segment"]["events"]
    }
    assert cited
    assert all(SEED_EVENTS[event_id]["type"] not in informational for event_id in cited)


async def test_geojson_of_the_seed_matches_the_json_answer(seeded: Client) -> None:
    """The seed's front at 06-05 as GeoJSON: every feature is a Point [lon, lat] of its
    place, its properties carry the segment's fields and the place's, the places without a
    point are listed in ``unlocated``, and features plus unlocated are the JSON answer."""
    as_json = await get_json(seeded, "/v1/state", valid_at="2017-06-05")
    response = await seeded.get("/v1/state", params={"valid_at": "2017-06-05", "format": "geojson"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(GEOJSON)
    geo = response.json()
    assert geo["type"] == "FeatureCollection"
    assert geo["frame"] == as_json["frame"]
    assert geo["next_cursor"] is None
    items = {item["place"]["id"]: item for item in as_json["items"]}
    assert len(geo["features"]) + len(geo["unlocated"]) == len(as_json["items"])
    assert sorted(
        [f["id"] for f in geo["features"]] + [s["place"]["id"] for s in geo["unlocated"]]
    ) == sorted(items)
    for feature in geo["features"]:
        item = items[feature["id"]]
        place, segment = item["place"], item["segment"]
        assert feature["type"] == "Feature"
        assert feature["geometry"] == {"type": "Point", "coordinates": [place["lon"], place["lat"]]}
        assert feature["properties"] == {
            "name": place["name"],
            "kind": place["kind"],
            "parent": place["parent"],
            "aliases": place["aliases"],
            "precision": place["precision"],
            **segment,
        }
        for key in ("controller", "status", "status_by", "disputed", "confidence", "events"):
            assert key in feature["properties"]
    assert geo["unlocated"] == [item for item in as_json["items"] if item["place"]["lat"] is None]
    assert {s["place"]["id"] for s in geo["unlocated"]} == {
        "sy-al-tanf-saa-positions",
        "sy-n4-highway-maskanah",
    }
    zkuf = next(f for f in geo["features"] if f["id"] == ZKUF)
    assert zkuf["geometry"]["coordinates"] == [39.3, 33.8]  # [lon, lat], not [lat, lon]
    assert zkuf["properties"]["controller"] == "us-coalition"
    # Asking with the Accept header gives the same bytes.
    by_header = await seeded.get(
        "/v1/state", params={"valid_at": "2017-06-05"}, headers={"accept": GEOJSON}
    )
    assert by_header.headers["content-type"].startswith(GEOJSON)
    assert by_header.content == response.content
