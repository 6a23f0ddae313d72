"""``held_since`` (when control last changed hands, DESIGN section 4) in every answer that
carries a segment: JSON, GeoJSON feature properties, the front's CSV (its ``held_since``
column), a place, its timeline, the disputes and the changes.

credibility-v1 leaves ``held_since`` null (v2 fills it), so the test that a value travels
writes one into the stored segment first, as the owner, where v2 will have put it: what is
pinned is the read path, from the stored row to each answer.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient

from contracts.timeline import Segment
from service.domain.export import STATE_COLUMNS
from tests.api.test_front import DAY_3, MASKANAH, isis_capture, post
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]

HELD_SINCE: Final = "2017-06-03T00:00:00Z"
JUNE_3: Final = datetime(2017, 6, 3, tzinfo=UTC)
_segment: Final = msgspec.json.Decoder(Segment)


async def answers(client: Client) -> dict[str, dict[str, Any]]:
    """Maskanah's segment at 06-05 (its latest change; its dispute on 06-03) in each answer
    that carries one."""
    at = {"valid_at": "2017-06-05"}

    async def get(path: str, **params: str) -> Any:
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    state = await get("/v1/state", **at)
    geo = await get("/v1/state", **at, format="geojson")
    place = await get(f"/v1/places/{MASKANAH}", **at)
    timeline = await get(f"/v1/places/{MASKANAH}/timeline")
    changes = await get("/v1/state/changes", **{"from": "2017-06-01", "to": "2017-06-05"})
    found = {
        "state": state["items"][0]["segment"],
        "geojson": geo["features"][0]["properties"],
        "place": place["segment"],
        "timeline": timeline["segments"][-1],
        "changes": changes["items"][-1]["after"],
    }
    disputes = await get("/v1/disputes", valid_at="2017-06-03")
    if disputes["items"]:
        found["disputes"] = disputes["items"][0]["segment"]
    return found


async def front_csv(client: Client) -> dict[str, str]:
    """Maskanah's row of the front's CSV at 06-05, by column."""
    response = await client.get("/v1/state", params={"valid_at": "2017-06-05", "format": "csv"})
    assert response.status_code == 200, response.text
    table = list(csv.reader(io.StringIO(response.text)))
    assert tuple(table[0]) == STATE_COLUMNS
    assert "held_since" in table[0]
    assert "since" not in table[0]
    (row,) = [dict(zip(table[0], r, strict=True)) for r in table[1:] if r[0] == MASKANAH]
    return row


async def test_every_answer_carries_held_since(client: Client) -> None:
    """Each answer's segment has a ``held_since`` key (null under credibility-v1), and the
    CSV's ``held_since`` cell is empty for it."""
    await post(client, event_json())
    for name, segment in (await answers(client)).items():
        assert "held_since" in segment, name
        assert segment["held_since"] is None, name
    assert (await front_csv(client))["held_since"] == ""


async def test_a_stored_held_since_reaches_every_answer(
    client: Client, owner: asyncpg.Connection
) -> None:
    """A held_since in the stored segment is in the JSON of the front, the place, its timeline,
    the disputes and the changes, in the GeoJSON feature's properties, and in the CSV's
    ``held_since`` column (UTC, microseconds, like the export's other times)."""
    await post(client, event_json(), isis_capture(occurred=DAY_3))  # disputed
    rows = await owner.fetch(
        "SELECT valid_from, body FROM segments WHERE place_id = $1 AND known_to IS NULL",
        MASKANAH,
    )
    assert rows
    for row in rows:
        held = msgspec.structs.replace(_segment.decode(row["body"]), held_since=JUNE_3)
        await owner.execute(
            "UPDATE segments SET body = $1 WHERE place_id = $2 AND valid_from = $3"
            " AND known_to IS NULL",
            msgspec.json.encode(held).decode(),
            MASKANAH,
            row["valid_from"],
        )
    found = await answers(client)
    assert set(found) == {"state", "geojson", "place", "timeline", "changes", "disputes"}
    for name, segment in found.items():
        assert segment["held_since"] == HELD_SINCE, name
    assert (await front_csv(client))["held_since"] == "2017-06-03T00:00:00.000000Z"
