"""The demo seed: the South Front report of 5 June 2017 encoded as wire-contract events.

``demo/seed.ndjson`` holds one event per line; ``demo/README.md`` says which sentence each
comes from. These tests pin that every line is a valid event of contract v1, that the ids are
the fixed uuid5 values of readable keys, and that the reported changes are all there.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from contracts.events import (
    Event,
    Place,
    event_decoder,
    event_type,
)

SEED = Path(__file__).resolve().parents[2] / "demo" / "seed.ndjson"

#: Namespace of the seed's ids, itself derived from a fixed URL so it can be re-made.
SEED_NAMESPACE = uuid.UUID("6dc027e5-fdc1-55b1-8e84-feaa58e32b3b")
KEY_PREFIX = "south-front-2017-06-05/"

#: The readable key of every event, in file order: id = uuid5(SEED_NAMESPACE, prefix + key).
SEED_KEYS = (
    "maskanah/control/isis",
    "maskanah/encirclement/syrian-government",
    "n4-highway-maskanah/capture/syrian-government",
    "maskanah/capture/syrian-government",
    "maskanah/withdrawal/isis",
    "khanasser/advance/syrian-government",
    "khanasser-alam-hill/capture/syrian-government",
    "deir-ezzor/advance/isis",
    "deir-ezzor-panorama-roundabout/capture/isis",
    "deir-ezzor-panorama-school/capture/isis",
    "deir-ezzor-tal-umm-abboud/clash/isis",
    "deir-ezzor-tal-syriatel/clash/isis",
    "deir-ezzor-137th-base/control/syrian-government",
    "deir-ezzor/control/syrian-government",
    "raqqa/control/isis",
    "palmyra/advance/syrian-government",
    "palmyra/strike/russia",
    "palmyra/strike/syrian-government",
    "abbasiya/casualties/syrian-government/isis-claim",
    "al-gharb-hills/casualties/syrian-government",
    "al-mahaor/equipment_loss/syrian-government",
    "al-mahaor/strike/isis",
    "al-mahaor/casualties/syrian-government",
    "al-zkuf/base_established/us-coalition",
    "al-bukamal/control/isis",
    "al-tanf-saa-positions/clash/us-backed-opposition",
    "al-tanf-saa-positions/control/syrian-government",
    "daraa/advance/hts",
    "daraa/strike/syrian-government",
    "daraa/counter_attack/syrian-government",
)

GOV = "syrian-government"
ISIS = "isis"
ARTICLE_URL = "https://example.org/south-front/2017-06-05/isis-maskanah-stronghold-liberated"


@pytest.fixture(scope="module")
def events() -> list[Event]:
    """Every event of the seed, decoded with the contract's own decoder, in file order."""
    return [event_decoder.decode(line) for line in SEED.read_bytes().splitlines()]


def of(events: list[Event], place: str, kind: str) -> list[Event]:
    """The events of one type about one place."""
    return [e for e in events if e.place.id == place and event_type(e) == kind]


def only(events: list[Event], place: str, kind: str) -> Event:
    """The single event of one type about one place."""
    found = of(events, place, kind)
    assert len(found) == 1, f"expected one {kind} at {place}, found {len(found)}"
    return found[0]


def test_every_line_is_one_valid_event() -> None:
    """Pins the file format: UTF-8 NDJSON, no blank lines, each line a contract-v1 event."""
    lines = SEED.read_bytes().splitlines()
    assert len(lines) == len(SEED_KEYS)
    for number, line in enumerate(lines, start=1):
        assert line.strip(), f"line {number} is blank"
        event_decoder.decode(line)  # raises msgspec.ValidationError on any contract breach


def test_ids_are_unique_and_stable(events: list[Event]) -> None:
    """Pins every id to uuid5 of its readable key, so a re-seed is idempotent on the server."""
    remade = uuid.uuid5(
        uuid.NAMESPACE_URL, "https://frontline.invalid/demo/seed/south-front-2017-06-05"
    )
    assert remade == SEED_NAMESPACE
    expected = [uuid.uuid5(SEED_NAMESPACE, KEY_PREFIX + key) for key in SEED_KEYS]
    assert [e.id for e in events] == expected
    assert len(set(expected)) == len(expected)


def test_keys_name_the_event_they_identify(events: list[Event]) -> None:
    """Pins each readable key to its event: key = <place id without 'sy-'>/<type>/<side>..."""
    for key, event in zip(SEED_KEYS, events, strict=True):
        place, kind, side = key.split("/")[:3]
        assert event.place.id == "sy-" + place, key
        assert event_type(event) == kind, key
        assert event.side == side, key


def test_every_place_is_named_on_first_appearance(events: list[Event]) -> None:
    """Pins place registration: the first event naming a place gives its name and kind, and
    every later mention of the place describes it the same way."""
    first: dict[str, Place] = {}
    for event in events:
        place = event.place
        if place.id not in first:
            assert place.name, f"{place.id} has no name on first appearance"
            assert place.kind is not None, f"{place.id} has no kind on first appearance"
            first[place.id] = place
        else:
            assert place == first[place.id], f"{place.id} is described two ways"


def test_points_are_in_syria_and_some_places_have_none(events: list[Event]) -> None:
    """Pins the map data: a point has both coordinates inside Syria's bounding box, and a few
    places (the N4 road section, places the article does not locate) have no point."""
    places = {e.place.id: e.place for e in events}
    for place in places.values():
        assert (place.lat is None) == (place.lon is None), place.id
        if place.lat is not None and place.lon is not None:
            assert 32.3 <= place.lat <= 37.4, place.id
            assert 35.6 <= place.lon <= 42.4, place.id
    without_point = {p.id for p in places.values() if p.lat is None}
    assert {"sy-n4-highway-maskanah", "sy-al-gharb-hills"} <= without_point
    assert len(without_point) < len(places) // 2


def test_parents_are_seed_places_or_governorates(events: list[Event]) -> None:
    """Pins the place tree: a parent is another place of the seed or a governorate id."""
    ids = {e.place.id for e in events}
    for event in events:
        parent = event.place.parent
        if parent is not None:
            assert parent in ids or parent.endswith("-governorate"), event.place.id


def test_maskanah_story(events: list[Event]) -> None:
    """Pins Maskanah: ISIS holds it (implied 'ISIS stronghold') and the Tiger Forces encircle it
    late on Friday 2 June; the army captures it on Saturday 3 June, when a majority of ISIS has
    withdrawn according to local sources."""
    place = "sy-maskanah"
    held = only(events, place, "control")
    assert (held.side, held.occurred.start, held.occurred.precision) == (ISIS, "2017-06-02", "day")
    ring = only(events, place, "encirclement")
    assert (ring.side, ring.actor, ring.occurred.start) == (GOV, "Tiger Forces", "2017-06-02")
    taken = only(events, place, "capture")
    assert (taken.side, taken.opponent, taken.occurred.start) == (GOV, ISIS, "2017-06-03")
    left = only(events, place, "withdrawal")
    assert (left.side, left.opponent, left.occurred.start) == (ISIS, GOV, "2017-06-03")
    assert left.source.attribution == "local sources"


def test_n4_highway_taken_by_the_government(events: list[Event]) -> None:
    """Pins the N4 highway at Maskanah: a road captured by the Tiger Forces on 2 June."""
    road = only(events, "sy-n4-highway-maskanah", "capture")
    assert road.place.kind == "road"
    assert (road.side, road.actor, road.occurred.start) == (GOV, "Tiger Forces", "2017-06-02")


def test_alam_hill_captured_near_khanasser(events: list[Event]) -> None:
    """Pins the Khanasser front: Liwa al-Quds and the Republican Guard advance east of
    Khanasser and capture the Alam hill."""
    advance = only(events, "sy-khanasser", "advance")
    hill = only(events, "sy-khanasser-alam-hill", "capture")
    for event in (advance, hill):
        assert event.side == GOV
        assert event.actor is not None
        assert "Liwa al-Quds" in event.actor
        assert "Republican Guard" in event.actor
    assert hill.place.kind == "hill"


def test_panorama_captured_by_isis(events: list[Event]) -> None:
    """Pins Deir Ezzor: ISIS captures the Panorama roundabout and the Panorama School from the
    government in early June (week precision) after a large advance on the city."""
    for place, kind in (
        ("sy-deir-ezzor-panorama-roundabout", "roundabout"),
        ("sy-deir-ezzor-panorama-school", "school"),
    ):
        taken = only(events, place, "capture")
        assert (taken.side, taken.opponent) == (ISIS, GOV)
        assert taken.occurred.precision == "week"
        assert taken.place.kind == kind
        assert taken.place.parent == "sy-deir-ezzor"
    assert only(events, "sy-deir-ezzor", "advance").side == ISIS


def test_deir_ezzor_hills_contested(events: list[Event]) -> None:
    """Pins the fighting 'ongoing' at publication in Tal Umm Abboud and Tal SyriaTel: one clash
    each, ISIS against the government, running up to 5 June."""
    for place in ("sy-deir-ezzor-tal-umm-abboud", "sy-deir-ezzor-tal-syriatel"):
        clash = only(events, place, "clash")
        assert (clash.side, clash.opponent) == (ISIS, GOV)
        assert clash.occurred.end == "2017-06-05"


def test_implied_control_at_publication(events: list[Event]) -> None:
    """Pins what the text implies about who holds what on 5 June: the government the 137th
    Base ('if it falls') and Deir Ezzor; ISIS Al-Bukamal ('ISIS-held town') and Raqqa."""
    expected = {
        "sy-deir-ezzor-137th-base": GOV,
        "sy-deir-ezzor": GOV,
        "sy-al-bukamal": ISIS,
        "sy-raqqa": ISIS,
    }
    for place, side in expected.items():
        held = only(events, place, "control")
        assert (held.side, held.occurred.start) == (side, "2017-06-05"), place


def test_al_zkuf_base_for_the_coalition(events: list[Event]) -> None:
    """Pins the US-led coalition's new base at Al-Zkuf, near the Iraqi border (approximate
    point, precision 'near')."""
    base = only(events, "sy-al-zkuf", "base_established")
    assert base.side == "us-coalition"
    assert base.place.kind == "base"
    assert base.place.precision == "near"
    assert base.place.lat is not None
    assert base.place.lon is not None


def test_casualty_claims_stay_with_their_sources(events: list[Event]) -> None:
    """Pins the casualty figures as separate claims: 21 killed claimed by ISIS (Abbasiya), 14
    reportedly killed (Al-Gharb hills) and 5 allegedly killed (Al-Mahaor), all government
    soldiers, each with the source and hedge the article gives it."""
    claimed = only(events, "sy-abbasiya", "casualties")
    reported = only(events, "sy-al-gharb-hills", "casualties")
    alleged = only(events, "sy-al-mahaor", "casualties")
    figures = []
    for event in (claimed, reported, alleged):
        assert event.casualties is not None
        assert event.casualties.side == GOV
        figures.append(event.casualties.killed)
    assert figures == [21, 14, 5]
    assert (claimed.hedge, claimed.source.alignment) == ("claimed", ISIS)
    assert claimed.source.name != "South Front"
    assert (reported.hedge, reported.source.name) == ("reported", "South Front")
    assert alleged.hedge == "alleged"


def test_tank_loss_and_strikes(events: list[Event]) -> None:
    """Pins the informational events: the SAA tank destroyed near Al-Mahaor, ISIS's ATGM strike
    there, the Russian and Syrian air support east of Palmyra, the army's bombing of Daraa."""
    assert only(events, "sy-al-mahaor", "equipment_loss").side == GOV
    assert only(events, "sy-al-mahaor", "strike").side == ISIS
    assert {e.side for e in of(events, "sy-palmyra", "strike")} == {"russia", GOV}
    assert only(events, "sy-daraa", "strike").side == GOV
    assert only(events, "sy-daraa", "counter_attack").side == GOV


def test_sources_dates_and_quotes(events: list[Event]) -> None:
    """Pins provenance: every event cites the article (published 5 June 2017) with a quote,
    South Front is graded C and government-aligned, and every valid time is a real date range
    within the week of the report."""
    for event in events:
        source = event.source
        assert (source.published_at, source.url) == ("2017-06-05", ARTICLE_URL)
        if source.name == "South Front":
            assert (source.reliability, source.alignment) == ("C", GOV)
        assert event.quote
        start = date.fromisoformat(event.occurred.start)
        end = date.fromisoformat(event.occurred.end or event.occurred.start)
        assert date(2017, 6, 1) <= start <= end <= date(2017, 6, 5)
        assert event.occurred.precision in {"day", "week"}


def test_type_counts(events: list[Event]) -> None:
    """Pins the size of the seed by type, so an event lost or added is noticed."""
    assert Counter(event_type(e) for e in events) == {
        "control": 6,
        "encirclement": 1,
        "capture": 5,
        "withdrawal": 1,
        "advance": 4,
        "clash": 3,
        "strike": 4,
        "casualties": 3,
        "equipment_loss": 1,
        "base_established": 1,
        "counter_attack": 1,
    }
