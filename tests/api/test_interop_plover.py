"""POST /v1/imports?format=plover with the project's own fixture files (a JSON array and JSON
lines): counts, rejected and flagged records with their lines and source ids, idempotent
re-imports, the types stored, and records no parser reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.conftest import import_counts, import_file, stored_count

Client = AsyncTestClient[Litestar]
FIXTURES: Final = Path(__file__).resolve().parents[1] / "fixtures" / "interop"
# Read once at import: the files are small, and the tests' event loop never blocks on disk.
PLOVER_ARRAY: Final = (FIXTURES / "plover.json").read_bytes()
PLOVER_LINES: Final = (FIXTURES / "plover.jsonl").read_bytes()
#: plover.json(l): 7 mappable records, 3 of them with casualties; 3 records refused.
PLOVER_EVENTS: Final = 10


async def test_a_plover_array_imports_and_a_second_import_is_all_duplicates(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Seven records give ten events, three are refused (their 1-based index as line), one
    flagged; the same file again stores nothing new."""
    first = await import_file(client, PLOVER_ARRAY, "plover")
    assert import_counts(first) == (PLOVER_EVENTS, 0, 3, 1)
    assert [(e["line"], e["source_id"], e["field"]) for e in first["errors"]] == [
        (8, "SF-20170605-0008", "date"),
        (9, "SF-20170605-0009", "location"),
        (10, "SF-20170605-0010", "actor"),
    ]
    assert [(f["line"], f["source_id"], f["field"]) for f in first["flags"]] == [
        (3, "SF-20170605-0003", "dead")
    ]
    again = await import_file(client, PLOVER_ARRAY, "plover")
    assert import_counts(again) == (0, PLOVER_EVENTS, 3, 1)
    assert await stored_count(owner) == PLOVER_EVENTS


async def test_plover_json_lines_import_the_same_events(
    client: Client, owner: asyncpg.Connection
) -> None:
    """The JSON lines file: the same events (duplicates after the array), the broken line
    rejected at its line, the others at their lines."""
    first = await import_file(client, PLOVER_LINES, "plover")
    assert import_counts(first) == (PLOVER_EVENTS, 0, 4, 1)
    assert [(e["line"], e["source_id"]) for e in first["errors"]] == [
        (7, None),
        (10, "SF-20170605-0008"),
        (11, "SF-20170605-0009"),
        (12, "SF-20170605-0010"),
    ]
    assert first["errors"][0]["reason"].startswith("not JSON")
    from_array = await import_file(client, PLOVER_ARRAY, "plover")
    assert import_counts(from_array) == (0, PLOVER_EVENTS, 3, 1)
    assert await stored_count(owner) == PLOVER_EVENTS


async def test_plover_categories_are_stored_as_their_frontline_types(client: Client) -> None:
    """COERCE/seize is a capture, ASSAULT a clash or strike, the rest 'other' with the code."""
    await import_file(client, PLOVER_ARRAY, "plover")
    page = (await client.get("/v1/events", params={"limit": 100})).json()["events"]
    types = sorted(e["event"]["type"] for e in page)
    assert types == sorted(
        ["capture", "clash", "casualties", "strike", "casualties", "strike", "casualties"]
        + ["other"] * 3
    )
    codes = sorted(e["event"]["code"] for e in page if e["event"]["type"] == "other")
    assert codes == ["PLOVER:COERCE/arrest", "PLOVER:CYBERATTACK/", "PLOVER:PROTEST/demo"]


#: A record nested past what Python's JSON parsers recurse into, and one with an integer over
#: the 4300 digits Python converts; a 400-digit latitude overflows float().
_DEEP: Final = '{"id": ' + "[" * 100_000 + "]" * 100_000 + "}"
_HUGE: Final = '{"id": ' + "1" * 5_000 + "}"
_GOOD: Final = {
    "id": "G-1",
    "date": "2017-06-03",
    "event": "ASSAULT",
    "mode": "firearms",
    "actor": "Syrian Arab Army",
    "location": {"name": "Maskanah", "lat": 35.96, "lon": 38.04},
}
_BIG_LAT: Final = json.dumps(
    _GOOD | {"id": "G-2", "location": {"name": "Maskanah", "lat": "LAT", "lon": 38.04}}
).replace('"LAT"', "1" * 400)


async def test_plover_lines_no_parser_reads_are_rejected_rows_not_500(
    client: Client, owner: asyncpg.Connection
) -> None:
    """JSON lines: a record nested 100,000 deep, one with a 5,000-digit integer and one with
    a 400-digit latitude are three rejected rows; the good record is stored."""
    body = "\n".join([_DEEP, _HUGE, _BIG_LAT, json.dumps(_GOOD)]).encode()
    result = await import_file(client, body, "plover")
    assert import_counts(result) == (1, 0, 3, 0)
    assert [(e["line"], e["field"]) for e in result["errors"]] == [
        (1, None),
        (2, None),
        (3, "location.lat"),
    ]
    assert await stored_count(owner) == 1


async def test_a_plover_array_no_parser_reads_is_422_and_stores_nothing(
    client: Client, owner: asyncpg.Connection
) -> None:
    """In an array the records cannot be told apart: 422 naming the body, nothing stored."""
    for bad in (_DEEP, _HUGE):
        body = f"[{bad}, {json.dumps(_GOOD)}]".encode()
        response = await client.post("/v1/imports?format=plover", content=body)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "body"
    assert await stored_count(owner) == 0
