"""GET /v1/places/{id}/history: how each report changed a place's story (the seed's Maskanah,
posted one report at a time)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.conftest import assert_problem

Client = AsyncTestClient[Litestar]

SEED: Final = Path(__file__).resolve().parents[2] / "demo" / "seed.ndjson"
MASKANAH: Final = "sy-maskanah"


async def post_maskanah(client: Client) -> list[dict[str, Any]]:
    """The seed's Maskanah reports, each in its own POST (so its own commit)."""
    events = [json.loads(line) for line in SEED.read_text().splitlines() if line.strip()]
    mine = [e for e in events if e["place"]["id"] == MASKANAH]
    for event in mine:
        response = await client.post("/v1/events", json=event)
        assert response.status_code == 201, response.text
    return mine


async def history(client: Client, **params: int | str) -> dict[str, Any]:
    response = await client.get(f"/v1/places/{MASKANAH}/history", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_each_commit_lists_its_report_and_what_it_did_to_the_timeline(
    client: Client,
) -> None:
    """Each commit of Maskanah's history lists its report, and replaying the removed and added
    segments gives today's timeline, with the ISIS-to-government turn among the changes."""
    posted = await post_maskanah(client)
    assert len(posted) >= 3
    page = await history(client)
    entries = page["entries"]
    assert page["next_cursor"] is None
    assert page["next"] is None
    assert page["policy"] == "credibility-v2"
    assert [[e["id"] for e in entry["events"]] for entry in entries] == [[e["id"]] for e in posted]
    for entry, event in zip(entries, posted, strict=True):
        (listed,) = entry["events"]
        assert listed["source"] == event["source"]["name"]
        assert listed["type"] == event["type"]
    # Replaying every commit's removed and added segments gives the timeline as it is now.
    rows: dict[str, dict[str, Any]] = {}
    for entry in entries:
        for segment in entry["removed"]:
            assert rows.pop(segment["valid_from"]) == segment
        for segment in entry["added"]:
            rows[segment["valid_from"]] = segment
    timeline = (await client.get(f"/v1/places/{MASKANAH}/timeline")).json()["segments"]
    assert sorted(rows.values(), key=lambda s: s["valid_from"]) == timeline
    # The government's capture is where the map turned, from ISIS to the government.
    turns = [
        change
        for entry in entries
        for change in entry["changes"]
        if change["before"] and change["after"]
        and change["before"]["controller"] == "isis"
        and change["after"]["controller"] == "syrian-government"
    ]  # fmt: skip
    assert turns, entries
    first = entries[0]["changes"]
    assert first[0]["before"] is None
    assert (
        first[0]["after"]["controller"] is not None or first[0]["after"]["status"] != "controlled"
    )


async def test_pages_of_commits_walk_the_same_history(client: Client) -> None:
    """Pages of two commits, followed by next_cursor, give exactly the entries of the
    single-page history; `next` and the Link header name the same next page."""
    await post_maskanah(client)
    whole = (await history(client))["entries"]
    walked: list[dict[str, Any]] = []
    cursor = ""
    while True:
        response = await client.get(
            f"/v1/places/{MASKANAH}/history", params={"cursor": cursor, "limit": 2}
        )
        page = response.json()
        walked.extend(page["entries"])
        assert len(page["entries"]) <= 2
        if page["next_cursor"] is None:
            assert page["next"] is None
            assert "link" not in response.headers
            break
        assert page["next"] == (
            f"/v1/places/{MASKANAH}/history?limit=2&cursor={page['next_cursor']}"
        )
        assert response.headers["link"] == f'<{page["next"]}>; rel="next"'
        cursor = page["next_cursor"]
    assert walked == whole


async def test_unknown_place_and_bad_parameters(client: Client) -> None:
    """An unknown place's history is 404, and an out-of-range or non-numeric limit or cursor is
    a 422 naming it."""
    assert_problem(await client.get("/v1/places/sy-nowhere/history"), 404)
    await post_maskanah(client)
    url = f"/v1/places/{MASKANAH}/history"
    assert_problem(await client.get(url, params={"limit": 0}), 422, "limit")
    assert_problem(await client.get(url, params={"limit": 100_000}), 422, "limit")
    assert_problem(await client.get(url, params={"cursor": -1}), 422, "cursor")
    assert_problem(await client.get(url, params={"cursor": "x"}), 422, "cursor")
    assert_problem(await client.get(url, params={"cursor": 10**20}), 422, "cursor")
    assert_problem(await client.get(url, params={"cursor": 2**63}), 422, "cursor")
