"""The filters an ACLED user expects on GET /v1/events: valid and recorded time ranges, side,
actor, source, type, bbox and country (the place's ancestry), each checked against the seed
read directly, combined with AND, named in ``filters``, and refused with a 422 naming the
parameter when bad."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from contracts.events import Occurred
from service.domain.time import valid_interval
from tests.api.conftest import assert_problem

Client = AsyncTestClient[Litestar]
SEED: Final = Path(__file__).resolve().parents[2] / "demo" / "seed.ndjson"
EVENTS: Final = [json.loads(line) for line in SEED.read_text().splitlines() if line.strip()]
NDJSON: Final = "application/x-ndjson"


@pytest.fixture
async def seeded(client: Client) -> Client:
    """The seed, one commit per event (positions are the seed's line numbers)."""
    for event in EVENTS:
        response = await client.post("/v1/events", json=event)
        assert response.status_code == 201, response.text
    return client


def expected(keep: Any) -> list[int]:
    """The positions of the seed's events that ``keep`` selects."""
    return [n for n, event in enumerate(EVENTS, start=1) if keep(event)]


async def positions(client: Client, **params: str) -> tuple[list[int], dict[str, Any]]:
    """Every position the filter selects (walking `next`), and the `filters` member; the
    NDJSON replay of the same query selects the same."""
    found: list[int] = []
    url: str | None = "/v1/events"
    query: dict[str, str] | None = {**params, "limit": "7"}
    filters: dict[str, Any] = {}
    while url is not None:
        response = await client.get(url, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        filters = page["filters"]
        found.extend(e["position"] for e in page["events"])
        url, query = page["next"], None
    streamed = await client.get("/v1/events", params=params, headers={"accept": NDJSON})
    assert [json.loads(line)["position"] for line in streamed.text.splitlines()] == found
    return found, filters


def interval(event: dict[str, Any]) -> tuple[datetime, datetime]:
    return valid_interval(msgspec.convert(event["occurred"], Occurred))


async def test_side_selects_the_side_or_its_opponent(seeded: Client) -> None:
    """`side=isis` selects the events where ISIS acts or is the opponent acted against."""
    found, filters = await positions(seeded, side="isis")
    assert found == expected(lambda e: "isis" in (e.get("side"), e.get("opponent")))
    assert found
    assert filters == {"side": "isis"}


async def test_actor_is_matched_case_folded(seeded: Client) -> None:
    """`actor=tiger forces` selects the Tiger Forces' events, however the seed spells it."""
    found, filters = await positions(seeded, actor="tiger forces")
    assert found == expected(lambda e: (e.get("actor") or "").lower() == "tiger forces")
    assert len(found) == 2
    assert filters == {"actor": "tiger forces"}


async def test_type_and_source_combine_with_the_rest(seeded: Client) -> None:
    """`type`, `source` (folded as the log keys it) and `side` together: every one holds."""
    found, filters = await positions(seeded, type="capture", source="south  FRONT", side="isis")
    assert found == expected(
        lambda e: (
            e["type"] == "capture"
            and e["source"]["name"] == "South Front"
            and "isis" in (e.get("side"), e.get("opponent"))
        )
    )
    assert filters == {"type": "capture", "source": "south  FRONT", "side": "isis"}


@pytest.mark.parametrize(
    ("country", "places"),
    [
        (
            "sy-deir-ezzor",
            {
                "sy-deir-ezzor",
                "sy-deir-ezzor-panorama-roundabout",
                "sy-deir-ezzor-panorama-school",
                "sy-deir-ezzor-tal-umm-abboud",
                "sy-deir-ezzor-tal-syriatel",
                "sy-deir-ezzor-137th-base",
            },
        ),
        (
            "sy-aleppo-governorate",
            {"sy-maskanah", "sy-n4-highway-maskanah", "sy-khanasser", "sy-khanasser-alam-hill"},
        ),
        ("sy-khanasser-alam-hill", {"sy-khanasser-alam-hill"}),
        ("sy-nowhere", set()),
    ],
)
async def test_country_follows_the_parent_chain(
    seeded: Client, country: str, places: set[str]
) -> None:
    """`country=X` selects events about X and every place whose parent chain reaches X (the
    Alam hill's parent is Khanasser, whose parent is the Aleppo governorate); an X the
    registry never saw selects nothing."""
    found, filters = await positions(seeded, country=country)
    assert found == expected(lambda e: e["place"]["id"] in places)
    assert filters == {"country": country}


async def test_bbox_selects_places_located_inside(seeded: Client) -> None:
    """`bbox=west,south,east,north` selects events about places whose point is inside it."""
    found, filters = await positions(seeded, bbox="38,35.5,38.5,36.5")

    def inside(e: dict[str, Any]) -> bool:
        lat, lon = e["place"].get("lat"), e["place"].get("lon")
        return lat is not None and lon is not None and 38 <= lon <= 38.5 and 35.5 <= lat <= 36.5

    assert found == expected(inside)
    assert found
    assert filters == {"bbox": [38.0, 35.5, 38.5, 36.5]}


async def test_valid_time_range_selects_overlapping_events(seeded: Client) -> None:
    """`valid_from`/`valid_to` select the events whose valid interval overlaps the range (both
    ends included, either one open), as the contract computes the interval."""
    start = datetime(2017, 6, 3, tzinfo=UTC)
    end = datetime(2017, 6, 5, tzinfo=UTC)
    found, filters = await positions(seeded, valid_from="2017-06-03", valid_to="2017-06-05")
    assert found == expected(lambda e: interval(e)[1] > start and interval(e)[0] <= end)
    assert found
    assert filters == {"valid_from": "2017-06-03T00:00:00Z", "valid_to": "2017-06-05T00:00:00Z"}
    after, _ = await positions(seeded, valid_from="2017-06-05T12:00:00Z")
    assert after == expected(lambda e: interval(e)[1] > datetime(2017, 6, 5, 12, tzinfo=UTC))
    before, _ = await positions(seeded, valid_to="2017-06-02T12:00:00+00:00")
    assert before == expected(lambda e: interval(e)[0] <= datetime(2017, 6, 2, 12, tzinfo=UTC))
    assert after
    assert before


async def test_recorded_time_range_selects_by_when_the_log_learned(seeded: Client) -> None:
    """`recorded_from`/`recorded_to` (both included) select by `recorded_at`, which never
    decreases along positions: the range of two events' times is the positions between."""
    events = (await seeded.get("/v1/events", params={"limit": 100})).json()["events"]
    fifth, ninth = events[4]["recorded_at"], events[8]["recorded_at"]
    found, filters = await positions(seeded, recorded_from=fifth, recorded_to=ninth)
    assert found == [5, 6, 7, 8, 9]
    assert set(filters) == {"recorded_from", "recorded_to"}


async def test_a_nul_in_free_text_neither_blocks_an_append_nor_a_filter(seeded: Client) -> None:
    """A quote or notes holding "\u0000" (which jsonb refuses) is appended, and the side and
    actor filters, whose indexes read the payload as jsonb, find it."""
    event = {
        **EVENTS[0],
        "id": "0d42ab1a-65e6-5fb5-9638-039f17195700",
        "actor": "Odd Unit",
        "notes": "before\u0000after \\u0000",
        "quote": "a\u0000b",
    }
    response = await seeded.post("/v1/events", json=event)
    assert response.status_code == 201, response.text
    head = len(EVENTS) + 1
    assert (await positions(seeded, actor="odd unit"))[0] == [head]
    assert head in (await positions(seeded, side=event["side"]))[0]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"valid_from": "2017-06-05", "valid_to": "2017-06-01"}, "valid_to"),
        ({"recorded_from": "2030-01-02", "recorded_to": "2030-01-01"}, "recorded_to"),
        ({"valid_from": "yesterday"}, "valid_from"),
        ({"valid_to": "2017-06-01T00:00:00"}, "valid_to"),
        ({"recorded_from": "2017-13-01"}, "recorded_from"),
        ({"bbox": "39,35,38,36"}, "bbox"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"country": "Syria"}, "country"),
        ({"side": "ISIS!"}, "side"),
        ({"actor": "a\nb"}, "actor"),
        ({"type": "coup"}, "type"),
    ],
)
async def test_bad_filters_are_422_naming_the_parameter(
    seeded: Client, params: dict[str, str], field: str
) -> None:
    """A reversed range, an unreadable instant (or one without its offset), a bad box, a
    country or side that is not an id, an actor with a control character, an unknown type:
    each a 422 problem naming the parameter, for a page and for the NDJSON replay."""
    assert_problem(await seeded.get("/v1/events", params=params), 422, field)
    assert_problem(
        await seeded.get("/v1/events", params=params, headers={"accept": NDJSON}), 422, field
    )
