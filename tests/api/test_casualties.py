"""GET /v1/places/{id}/casualties and GET /v1/casualties through the real app and
PostgreSQL: every claim with its source and figures, grouped by incident where reports are
linked, the spread of best figures (never averaged), violations named, pages that follow."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.interop.rows import event_id
from tests.api.conftest import assert_problem, import_file
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]
FIXTURES: Final = Path(__file__).resolve().parents[1] / "fixtures" / "interop"
MAVERICK: Final = (FIXTURES / "maverick.csv").read_bytes()
CODEBOOK: Final = (FIXTURES / "ucdp-ged-codebook.csv").read_bytes()


def maverick_id(report: str) -> str:
    """The event id of a MAVERICK report of the fixture."""
    return str(event_id("maverick", report, "casualties"))


async def get_json(client: Client, path: str, **query: Any) -> dict[str, Any]:
    """GET ``path`` expecting 200, and its JSON body."""
    response = await client.get(path, params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_five_reports_disagreeing_on_deaths_are_one_incident_with_their_spread(
    client: Client,
) -> None:
    """MAV-E-17's five reports (12, 15, 9, 21, 14 dead) are one incident of Tabqa: each
    claim with its outlet, publication date, figures and side; spread 9..21 over five
    sources; the other two reports of Tabqa are incidents of their own."""
    await import_file(client, MAVERICK, "maverick")
    page = await get_json(client, "/v1/places/tabqa/casualties")
    assert page["place"]["id"] == "tabqa"
    assert (page["next_cursor"], page["next"]) == (None, None)
    first, *rest = page["items"]
    assert first["incident"] == maverick_id("MAV-1001")
    claims = first["claims"]
    assert [(c["source"], c["published_at"], c["killed"], c["wounded"]) for c in claims] == [
        ("Reuters", "2017-05-10", 12, 20),
        ("SOHR", "2017-05-10", 15, None),
        ("SANA", "2017-05-11", 9, 31),
        ("Amaq", "2017-05-09", 21, None),
        ("Hawar News (ANHA)", "2017-05-12", 14, 17),
    ]
    assert {c["side"] for c in first["claims"]} == {"islamic-state"}
    assert {c["occurred_start"] for c in first["claims"]} == {"2017-05-09"}
    assert first["spread"] == {"min_killed": 9, "max_killed": 21, "claims": 5, "sources": 5}
    assert first["violations"] == 0
    assert [[c["event"] for c in i["claims"]] for i in rest] == [
        [maverick_id("MAV-1006")],
        [maverick_id("MAV-1010")],
    ]


async def test_pages_follow_with_next_cursor_and_next(client: Client) -> None:
    """limit=1: one incident a page; ``next_cursor`` and ``next`` (and the Link header) lead
    through the three incidents and the last page names none."""
    await import_file(client, MAVERICK, "maverick")
    whole = (await get_json(client, "/v1/places/tabqa/casualties"))["items"]
    seen: list[dict[str, Any]] = []
    path: str | None = "/v1/places/tabqa/casualties?limit=1"
    while path:
        response = await client.get(path)
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(page["items"])
        assert len(page["items"]) == 1
        if page["next"] is not None:
            assert response.headers["link"] == f'<{page["next"]}>; rel="next"'
            assert f"cursor={page['next_cursor']}" in page["next"]
        path = page["next"]
    assert seen == whole


async def test_a_violation_is_listed_as_given_and_a_retraction_leaves_the_spread(
    client: Client,
) -> None:
    """A claim with low > killed is listed as given with the violation named; its source's
    retraction keeps it listed, out of force and out of the spread."""
    base = event_json(place={"id": "sy-tabqa", "name": "Tabqa"})
    claim = {
        **base,
        "id": "7a4b1f6e-0000-4000-8000-000000000001",
        "type": "casualties",
        "casualties": {"killed": 30, "low": 40, "high": 55, "side": "syrian-government"},
    }
    other = {
        **base,
        "id": "7a4b1f6e-0000-4000-8000-000000000002",
        "type": "casualties",
        "source": {"name": "Reuters", "reliability": "B"},
        "casualties": {"killed": 12},
        "relates_to": [{"event": claim["id"], "relation": "confirms"}],
    }
    for body in (claim, other):
        response = await client.post("/v1/events", json=body)
        assert response.status_code == 201, response.text
    [incident] = (await get_json(client, "/v1/places/sy-tabqa/casualties"))["items"]
    bad = incident["claims"][0]
    assert (bad["low"], bad["killed"], bad["high"]) == (40, 30, 55)
    assert bad["violations"] == ["casualties.low exceeds casualties.killed"]
    assert bad["casualties_side"] == "syrian-government"
    assert incident["violations"] == 1
    assert incident["spread"] == {"min_killed": 12, "max_killed": 30, "claims": 2, "sources": 2}
    retract = {
        **base,
        "id": "7a4b1f6e-0000-4000-8000-000000000003",
        "type": "statement",
        "relates_to": [{"event": claim["id"], "relation": "retracts"}],
    }
    response = await client.post("/v1/events", json=retract)
    assert response.status_code == 201, response.text
    [after] = (await get_json(client, "/v1/places/sy-tabqa/casualties"))["items"]
    assert [c["in_force"] for c in after["claims"]] == [False, True]
    assert after["spread"] == {"min_killed": 12, "max_killed": 12, "claims": 1, "sources": 1}
    before = await get_json(client, "/v1/places/sy-tabqa/casualties", known_at="position:2")
    assert before["frame"]["known_position"] == 2
    assert [c["in_force"] for c in before["items"][0]["claims"]] == [True, True]


async def test_the_range_query_lists_the_claims_inside_the_range_and_the_box(
    client: Client,
) -> None:
    """UCDP's Tabqa rows: from 05-01 to 05-05 lists the one-sided violence and the non-state
    fight, not the June month or the 05-09 and 05-11 rows; a box elsewhere lists nothing; a
    place without a point (MAVERICK's Syria) is in no box but in an unboxed range."""
    await import_file(client, CODEBOOK, "ucdp-ged")
    page = await get_json(client, "/v1/casualties", **{"from": "2017-05-01", "to": "2017-05-05"})
    assert page["from"] == "2017-05-01T00:00:00Z"
    killed = [(i["place"], [c["killed"] for c in i["claims"]]) for i in page["items"]]
    assert killed == [("tabqa", [6]), ("tabqa", [7])]
    boxed = await get_json(
        client, "/v1/casualties", **{"from": "2017-05-01", "bbox": "38,35,39,36"}
    )
    assert {i["place"] for i in boxed["items"]} == {"tabqa"}
    elsewhere = await get_json(client, "/v1/casualties", bbox="30,30,31,31")
    assert elsewhere["items"] == []
    await import_file(client, MAVERICK, "maverick")
    places = {i["place"] for i in (await get_json(client, "/v1/casualties"))["items"]}
    assert places == {"tabqa", "syria"}
    boxed = await get_json(client, "/v1/casualties", bbox="-180,-90,180,90")
    assert {i["place"] for i in boxed["items"]} == {"tabqa"}


async def test_range_pages_count_places_and_follow(client: Client) -> None:
    """limit=1 in the range query: one place a page, its incidents whole, until none."""
    await import_file(client, CODEBOOK, "ucdp-ged")
    await import_file(client, MAVERICK, "maverick")
    one = await get_json(client, "/v1/casualties", limit=1)
    assert {i["place"] for i in one["items"]} == {"syria"}
    assert one["next_cursor"] == "syria"
    two = await get_json(client, "/v1/casualties", limit=1, cursor=one["next_cursor"])
    assert {i["place"] for i in two["items"]} == {"tabqa"}
    assert two["next_cursor"] is None


async def test_bad_parameters_are_422_problems_naming_them(client: Client) -> None:
    """A cursor that is no page's, ``to`` before ``from``, a date that is none, a limit past
    the page maximum: 422 naming the parameter; an unknown place: 404."""
    await import_file(client, MAVERICK, "maverick")
    cases = [
        ("/v1/places/tabqa/casualties", {"cursor": "abc"}, "cursor"),
        ("/v1/places/tabqa/casualties", {"limit": "100000000"}, "limit"),
        ("/v1/casualties", {"from": "2017-06-01", "to": "2017-05-01"}, "to"),
        ("/v1/casualties", {"from": "2017-13-01"}, "from"),
        ("/v1/casualties", {"bbox": "40,35,38,36"}, "bbox"),
    ]
    for path, query, field in cases:
        assert_problem(await client.get(path, params=query), 422, field)
    assert_problem(await client.get("/v1/places/nowhere/casualties"), 404)


async def test_claims_name_their_sides_as_the_side_registry_known_then_names_them(
    client: Client,
) -> None:
    """A claim made under an alias is listed under its canonical side once the alias is
    registered, and under the name it was made with as known before the registration."""
    await import_file(client, MAVERICK, "maverick")
    before = await get_json(client, "/v1/places/tabqa/casualties")
    side = {
        "side": "isis",
        "name": "Islamic State",
        "kind": "non_state_armed_group",
        "colour": "#000000",
        "aliases": ["islamic-state"],
    }
    registered = await client.post("/v1/sides", json=side)
    assert registered.status_code == 201, registered.text
    after = await get_json(client, "/v1/places/tabqa/casualties")
    pinned = await get_json(
        client,
        "/v1/places/tabqa/casualties",
        known_at=f"position:{before['frame']['known_position']}",
    )
    ranged = await get_json(client, "/v1/casualties", **{"from": "2017-05-01", "to": "2017-05-31"})
    assert {c["side"] for c in before["items"][0]["claims"]} == {"islamic-state"}
    assert {c["side"] for c in pinned["items"][0]["claims"]} == {"islamic-state"}
    assert {c["side"] for c in after["items"][0]["claims"]} == {"isis"}
    incident = [i for i in ranged["items"] if i["incident"] == maverick_id("MAV-1001")]
    assert len(incident) == 1
    assert {c["side"] for c in incident[0]["claims"]} == {"isis"}
