"""POST /v1/events with application/x-ndjson: bulk import, bad lines reported, none lost."""

from __future__ import annotations

import json

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import stored_count
from tests.payloads import at_place, event_json

NDJSON = {"content-type": "application/x-ndjson"}


def _lines(*items: object) -> bytes:
    return (
        b"\n".join(item if isinstance(item, bytes) else json.dumps(item).encode() for item in items)
        + b"\n"
    )


async def test_bad_lines_are_reported_and_good_ones_kept(
    admin_key: str, settings: Settings, owner: asyncpg.Connection
) -> None:
    """Good lines are stored across chunks; each bad one is listed with its line and reason."""
    app = create_app(settings.with_(import_chunk=3))
    good = [at_place(f"sy-place-{i}") for i in range(7)]
    body = _lines(
        good[0],
        b"{not json",
        good[1],
        event_json(type="massacre"),
        good[2],
        b"",
        good[3],
        good[4],
        good[0],  # already in this import: a duplicate
        event_json(credibility=9),
        good[5],
        good[6],
    )
    async with AsyncTestClient(app=app) as client:
        client.headers["authorization"] = f"Bearer {admin_key}"
        response = await client.post("/v1/events", content=body, headers=NDJSON)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], result["duplicate"], result["rejected"]) == (7, 1, 3)
    assert [(e["line"], e["field"]) for e in result["errors"]] == [
        (2, None),
        (4, "type"),
        (10, "credibility"),
    ]
    assert "malformed JSON" in result["errors"][0]["reason"]
    assert result["last_position"] == 7
    assert await stored_count(owner) == 7


async def test_reimport_stores_nothing_new(
    client: AsyncTestClient[Litestar], owner: asyncpg.Connection
) -> None:
    """The same file twice: the second time every line is a duplicate."""
    body = _lines(*[at_place(f"sy-place-{i}") for i in range(5)])
    first = (await client.post("/v1/events", content=body, headers=NDJSON)).json()
    second = (await client.post("/v1/events", content=body, headers=NDJSON)).json()
    assert (first["accepted"], first["duplicate"]) == (5, 0)
    assert (second["accepted"], second["duplicate"], second["rejected"]) == (0, 5, 0)
    assert await stored_count(owner) == 5


async def test_import_ignores_the_json_body_limit(admin_key: str, settings: Settings) -> None:
    """NDJSON imports stream: they are not held to the JSON body limit."""
    app = create_app(settings.with_(max_body_bytes=1000))
    body = _lines(*[at_place(f"sy-place-{i}") for i in range(20)])
    assert len(body) > 1000
    async with AsyncTestClient(app=app) as client:
        client.headers["authorization"] = f"Bearer {admin_key}"
        response = await client.post("/v1/events", content=body, headers=NDJSON)
    assert response.json()["accepted"] == 20


async def test_link_inside_one_import_chunk(client: AsyncTestClient[Litestar]) -> None:
    """A line may link to an event on an earlier line of the same import."""
    original = event_json()
    denial = event_json(
        type="statement",
        side=None,
        source={"name": "ANHA"},
        relates_to=[{"event": original["id"], "relation": "denies"}],
    )
    body = _lines(original, denial)
    result = (await client.post("/v1/events", content=body, headers=NDJSON)).json()
    assert (result["accepted"], result["rejected"]) == (2, 0), result
