"""Reproducible exports: the log as NDJSON or CSV up to a position, the front as CSV; the
same question gives the same bytes and ETag across appends, restarts and rebuilds."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Final

from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from service.usecases.export import LOG_COLUMNS, STATE_COLUMNS
from tests.api.conftest import assert_problem
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]
SEED: Final = Path(__file__).resolve().parents[2] / "demo" / "seed.ndjson"


async def post_seed_one_by_one(client: Client) -> int:
    """The seed, one POST (one commit) per event; the number of events."""
    events = [json.loads(line) for line in SEED.read_text().splitlines() if line.strip()]
    for event in events:
        response = await client.post("/v1/events", json=event)
        assert response.status_code == 201, response.text
    return len(events)


def rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))


async def get(client: Client, path: str, **params: str) -> tuple[bytes, str]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.content, response.headers["etag"]


async def test_the_log_export_is_the_replay_and_does_not_change(
    admin_key: str, client: Client, settings: Settings
) -> None:
    """The NDJSON export is byte for byte the NDJSON replay; cut at a position it answers 304 to
    its ETag (alone, weak in a list, or *) and keeps its bytes and ETag across appends, a
    rebuild and a restart."""
    count = await post_seed_one_by_one(client)
    whole, etag = await get(client, "/v1/export")
    replay = (await client.get("/v1/events", headers={"accept": "application/x-ndjson"})).content
    assert whole == replay
    assert len(whole.splitlines()) == count
    early, early_etag = await get(client, "/v1/export", known_at="position:5")
    assert [json.loads(line)["position"] for line in early.splitlines()] == [1, 2, 3, 4, 5]
    assert early_etag != etag
    for header in (early_etag, f'"nope", W/{early_etag}', "*"):
        held = await client.get(
            "/v1/export", params={"known_at": "position:5"}, headers={"if-none-match": header}
        )
        assert held.status_code == 304, header
        assert held.content == b""
    other = await client.get(
        "/v1/export", params={"known_at": "position:5"}, headers={"if-none-match": '"nope"'}
    )
    assert other.status_code == 200
    await client.post("/v1/events", json=event_json())  # the log grows
    assert await get(client, "/v1/export", known_at="position:5") == (early, early_etag)
    assert await get(client, "/v1/export", known_at=f"position:{count}") == (whole, etag)
    assert (await client.post("/v1/admin/rebuild")).status_code == 200
    async with AsyncTestClient(app=create_app(settings)) as restarted:
        restarted.headers["authorization"] = f"Bearer {admin_key}"
        assert await get(restarted, "/v1/export", known_at="position:5") == (early, early_etag)


async def test_the_log_as_csv(client: Client) -> None:
    """The log as CSV has the LOG_COLUMNS header and one CRLF-ended row per event matching the
    replay's position, hash, payload and source, and the same bytes and ETag when asked again,
    an ETag apart from the NDJSON export's."""
    count = await post_seed_one_by_one(client)
    body, etag = await get(client, "/v1/export", format="csv")
    table = rows(body)
    assert tuple(table[0]) == LOG_COLUMNS
    assert len(table) == count + 1
    replay = (await client.get("/v1/events", params={"limit": count})).json()["events"]
    for row, stored in zip(table[1:], replay, strict=True):
        record = dict(zip(LOG_COLUMNS, row, strict=True))
        assert int(record["position"]) == stored["position"]
        assert record["hash"] == stored["hash"]
        assert json.loads(record["payload"]) == stored["event"]
        assert record["source"] == stored["event"]["source"]["name"]
    assert body.endswith(b"\r\n")
    assert (await get(client, "/v1/export", format="csv")) == (body, etag)
    _, ndjson_etag = await get(client, "/v1/export")
    assert ndjson_etag != etag


async def test_the_front_as_csv_is_reproducible(
    admin_key: str, client: Client, settings: Settings
) -> None:
    """The front as CSV at a valid and known time lists the places of the JSON answer with their
    controller and sources, answers 304 to its ETag, and gives the same bytes and ETag after an
    append, a rebuild and a restart."""
    count = await post_seed_one_by_one(client)
    at = {"valid_at": "2017-06-05", "known_at": f"position:{count}", "format": "csv"}
    body, etag = await get(client, "/v1/state", **at)
    table = rows(body)
    assert tuple(table[0]) == STATE_COLUMNS
    records = {r[0]: dict(zip(STATE_COLUMNS, r, strict=True)) for r in table[1:]}
    maskanah = records["sy-maskanah"]
    assert maskanah["controller"] == "syrian-government"
    assert maskanah["name"] == "Maskanah"
    assert "South Front" in maskanah["sources"].split("; ")
    assert maskanah["disputed"] in ("true", "false")
    json_page = (await client.get("/v1/state", params={**at, "format": "json"})).json()
    assert sorted(records) == sorted(item["place"]["id"] for item in json_page["items"])
    held = await client.get("/v1/state", params=at, headers={"if-none-match": etag})
    assert held.status_code == 304
    await client.post("/v1/events", json=event_json())
    assert (await client.post("/v1/admin/rebuild")).status_code == 200
    async with AsyncTestClient(app=create_app(settings)) as restarted:
        restarted.headers["authorization"] = f"Bearer {admin_key}"
        assert await get(restarted, "/v1/state", **at) == (body, etag)


async def test_bad_export_parameters_are_422(client: Client) -> None:
    """An unknown export format, an unreadable known_at and an unknown state format are each a
    422 naming the parameter."""
    assert_problem(await client.get("/v1/export", params={"format": "xml"}), 422, "format")
    assert_problem(await client.get("/v1/export", params={"known_at": "soon"}), 422, "known_at")
    response = await client.get("/v1/state", params={"format": "xlsx"})
    assert_problem(response, 422, "format")
