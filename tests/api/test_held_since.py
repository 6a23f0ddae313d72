"""``held_since`` (when control last changed hands, DESIGN section 4) in every answer that
carries a segment: JSON, GeoJSON feature properties, the front's CSV (its ``held_since``
column, which replaced ``since``), a place, its timeline, the disputes and the changes."""

from __future__ import annotations

import csv
import io
from typing import Any, Final

from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.usecases.export import STATE_COLUMNS
from tests.api.test_front import GOV, MASKANAH, REUTERS, post
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]

JUNE_3: Final = "2017-06-03T00:00:00Z"


async def get(client: Client, path: str, **params: str) -> Any:
    """GET a 200 answer's JSON."""
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def answers(client: Client, valid_at: str) -> dict[str, dict[str, Any]]:
    """Maskanah's segment at ``valid_at`` in each answer that carries one (its latest change
    for the changes; the disputes only when it is disputed then)."""
    at = {"valid_at": valid_at}
    state = await get(client, "/v1/state", **at)
    geo = await get(client, "/v1/state", **at, format="geojson")
    place = await get(client, f"/v1/places/{MASKANAH}", **at)
    timeline = await get(client, f"/v1/places/{MASKANAH}/timeline")
    changes = await get(client, "/v1/state/changes", **{"from": "2017-06-01", "to": valid_at})
    found = {
        "state": state["items"][0]["segment"],
        "geojson": geo["features"][0]["properties"],
        "place": place["segment"],
        "timeline": next(
            s for s in timeline["segments"] if s["valid_from"] == place["segment"]["valid_from"]
        ),
        "changes": changes["items"][-1]["after"],
    }
    disputes = await get(client, "/v1/disputes", **at)
    if disputes["items"]:
        found["disputes"] = disputes["items"][0]["segment"]
    return found


async def front_csv(client: Client, valid_at: str) -> dict[str, str]:
    """Maskanah's row of the front's CSV at ``valid_at``, by column."""
    response = await client.get("/v1/state", params={"valid_at": valid_at, "format": "csv"})
    assert response.status_code == 200, response.text
    table = list(csv.reader(io.StringIO(response.text)))
    assert tuple(table[0]) == STATE_COLUMNS
    assert "held_since" in table[0]
    assert "since" not in table[0]
    (row,) = [dict(zip(table[0], r, strict=True)) for r in table[1:] if r[0] == MASKANAH]
    return row


async def test_held_since_is_in_every_answer_and_the_csv(client: Client) -> None:
    """The government captures Maskanah on 06-03 (and a neutral agency says it holds it on
    06-05, which corroborates without a change of hands): at 06-05 every answer's segment says
    held since 06-03, and so does the CSV's ``held_since`` column (UTC, microseconds, like the
    export's other times), though the segment itself starts on 06-05."""
    capture = event_json()
    holds = event_json(
        type="control", opponent=None, source=REUTERS, occurred={"start": "2017-06-05"}
    )
    await post(client, capture, holds)
    found = await answers(client, "2017-06-05")
    assert set(found) == {"state", "geojson", "place", "timeline", "changes"}
    for name, segment in found.items():
        assert (segment["controller"], segment["held_since"]) == (GOV, JUNE_3), name
    assert found["place"]["valid_from"] == "2017-06-05T00:00:00Z"
    assert (await front_csv(client, "2017-06-05"))["held_since"] == "2017-06-03T00:00:00.000000Z"


async def test_a_disputed_segment_and_no_controller(client: Client) -> None:
    """A segment disputed from its start gives its winner held_since at that start, in the
    disputes too; while no side controls (a withdrawal naming no one), held_since is null and
    the CSV cell empty."""
    await post(
        client,
        event_json(),
        event_json(side="isis", opponent=GOV, source=REUTERS, quote="ISIS holds Maskanah"),
    )
    disputed = await answers(client, "2017-06-03")
    assert "disputes" in disputed
    for name, segment in disputed.items():
        assert (segment["disputed"], segment["held_since"]) == (True, JUNE_3), name
    await post(
        client,
        event_json(
            type="withdrawal", side="isis", opponent=None, source=REUTERS,
            occurred={"start": "2017-06-10"}, quote="ISIS left Maskanah",
        ),
    )  # fmt: skip
    empty = await answers(client, "2017-06-10")
    for name, segment in empty.items():
        assert (segment["controller"], segment["held_since"]) == (None, None), name
    assert (await front_csv(client, "2017-06-10"))["held_since"] == ""
