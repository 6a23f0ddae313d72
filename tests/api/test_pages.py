"""One pagination style on every list: ``cursor`` and ``limit`` in; ``next_cursor``, ``next``
(the next page's relative URL) and a ``Link: <next>; rel="next"`` header out; each list
walked in small pages holds exactly what one large page holds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.conftest import assert_problem
from tests.payloads import at_place

Client = AsyncTestClient[Litestar]
SEED: Final = Path(__file__).resolve().parents[2] / "demo" / "seed.ndjson"
DAY: Final = "2017-09-20"
DISPUTED_DAY: Final = "2017-06-03"
DISPUTED: Final = ("sy-disputed-a", "sy-disputed-b", "sy-disputed-c")
"""Places that two sources give to different sides on DISPUTED_DAY (the seed has none)."""

Items = Callable[[dict[str, Any]], list[Any]]


def _geo(page: dict[str, Any]) -> list[Any]:
    """A GeoJSON page's places in id order: located (features) and unlocated together."""
    return sorted(
        [f["id"] for f in page["features"]] + [s["place"]["id"] for s in page["unlocated"]]
    )


LISTS: Final[dict[str, tuple[str, Items]]] = {
    "events": ("/v1/events?after=0", lambda p: [e["position"] for e in p["events"]]),
    "events of a place": (
        "/v1/events?place=sy-deir-ezzor",
        lambda p: [e["position"] for e in p["events"]],
    ),
    "state": (f"/v1/state?valid_at={DAY}", lambda p: [i["place"]["id"] for i in p["items"]]),
    "state as GeoJSON": (f"/v1/state?valid_at={DAY}&format=geojson", _geo),
    "disputes": (
        f"/v1/disputes?valid_at={DISPUTED_DAY}",
        lambda p: [i["place"]["id"] for i in p["items"]],
    ),
    "changes": (
        "/v1/state/changes?from=2017-01-01&to=2017-12-31",
        lambda p: [(i["place"]["id"], i["at"]) for i in p["items"]],
    ),
    "net changes": (
        "/v1/state/changes?from=2017-01-01&to=2017-12-31&net=true",
        lambda p: [i["place"]["id"] for i in p["items"]],
    ),
    "a place's events": (
        "/v1/places/sy-deir-ezzor/events",
        lambda p: [e["position"] for e in p["events"]],
    ),
    "a place's history": (
        "/v1/places/sy-deir-ezzor/history",
        lambda p: [e["commit_position"] for e in p["entries"]],
    ),
}


@pytest.fixture
async def seeded(client: Client) -> Client:
    """The demo seed, one commit per event."""
    for line in SEED.read_text().splitlines():
        if line.strip():
            response = await client.post("/v1/events", json=json.loads(line))
            assert response.status_code == 201, response.text
    for place in DISPUTED:
        government = at_place(place, occurred={"start": DISPUTED_DAY, "precision": "day"})
        isis = at_place(
            place,
            side="isis",
            opponent="syrian-government",
            source={"name": "Reuters", "reliability": "B", "alignment": "neutral"},
            occurred={"start": "2017-05-29", "end": "2017-06-05", "precision": "day"},
        )
        response = await client.post("/v1/events", json={"events": [government, isis]})
        assert response.status_code == 201, response.text
    return client


@pytest.mark.parametrize("name", list(LISTS))
async def test_every_list_walks_to_its_end_without_gaps_or_repeats(
    seeded: Client, name: str
) -> None:
    """Following `next` from a page of 2 lists exactly the items of a single page of 1000,
    in the same order; every page but the last names its successor in `next_cursor`, `next`
    (this query with only the cursor changed) and the Link header; the last names none."""
    url, items = LISTS[name]
    whole_page = (
        await seeded.get(f"{url}&limit=1000" if "?" in url else f"{url}?limit=1000")
    ).json()
    whole = items(whole_page)
    assert whole_page["next_cursor"] is None
    assert len(whole) >= 2, name  # the walk below takes more than one page
    walked: list[Any] = []
    following: str | None = f"{url}&limit=2" if "?" in url else f"{url}?limit=2"
    pages = 0
    while following is not None:
        response = await seeded.get(following)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        walked.extend(items(page))
        following = page["next"]
        if following is None:
            assert page["next_cursor"] is None
            assert "link" not in response.headers
        else:
            assert page["next_cursor"] is not None
            assert f"cursor={page['next_cursor']}" in following.replace("%40", "@").replace(
                "%3A", ":"
            )
            assert response.headers["link"] == f'<{following}>; rel="next"'
            assert following.split("?")[0] == url.split("?")[0]
        assert pages <= len(whole) + 1, "the walk does not end"
    assert walked == whole, name


async def test_a_place_s_events_count_every_page(seeded: Client) -> None:
    """A place's events carry `total` (every page together), and whether each is in force is
    judged among all of them, whatever the page."""
    whole = (await seeded.get("/v1/places/sy-deir-ezzor/events")).json()
    first = (await seeded.get("/v1/places/sy-deir-ezzor/events?limit=1")).json()
    assert first["total"] == whole["total"] == len(whole["events"])
    assert first["events"] == whole["events"][:1]


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ("/v1/events", "sy-maskanah"),
        ("/v1/places/sy-deir-ezzor/events", "-3"),
        ("/v1/places/sy-deir-ezzor/history", "1e3"),
        ("/v1/state", "Not A Place"),
        ("/v1/state/changes?from=2017-01-01&to=2017-12-31", "sy-raqqa"),
    ],
)
async def test_a_cursor_of_another_list_is_a_422_naming_cursor(
    seeded: Client, path: str, bad: str
) -> None:
    """A cursor a list never gave (of another list's shape) is a 422 problem naming `cursor`."""
    sep = "&" if "?" in path else "?"
    assert_problem(await seeded.get(f"{path}{sep}cursor={bad}"), 422, "cursor")


@pytest.mark.parametrize("path", ["/v1/places/sy-deir-ezzor/events", "/v1/disputes", "/v1/events"])
async def test_limit_out_of_range_is_a_422_naming_limit(seeded: Client, path: str) -> None:
    """`limit` below 1 or above FRONTLINE_MAX_PAGE is a 422 naming `limit`."""
    for bad in ("0", "100000"):
        assert_problem(await seeded.get(f"{path}?limit={bad}"), 422, "limit")
