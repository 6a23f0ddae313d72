"""POST /v1/imports?format=ucdp-ged with the project's own fixture file: counts, rejected and
flagged rows with their lines and source ids, an idempotent re-import, and a flagged row
stored as given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.interop.rows import event_id
from tests.api.conftest import import_counts, import_file, stored_count

Client = AsyncTestClient[Litestar]
FIXTURES: Final = Path(__file__).resolve().parents[1] / "fixtures" / "interop"
# Read once at import: the files are small, and the tests' event loop never blocks on disk.
UCDP: Final = (FIXTURES / "ucdp-ged.csv").read_bytes()
#: ucdp-ged.csv: 8 mappable rows, a clash and a casualties event each; 3 rows refused.
UCDP_EVENTS: Final = 16


async def test_a_ucdp_file_imports_and_a_second_import_is_all_duplicates(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Eight rows give sixteen events, three rows are refused, three flagged (two for their
    figures, two for a month or year precision); the same file
    again stores nothing new and reports the same rows."""
    first = await import_file(client, UCDP, "ucdp-ged")
    assert import_counts(first) == (UCDP_EVENTS, 0, 3, 3)
    again = await import_file(client, UCDP, "ucdp-ged")
    assert import_counts(again) == (0, UCDP_EVENTS, 3, 3)
    assert again["errors"] == first["errors"]
    assert again["last_position"] == first["last_position"] == UCDP_EVENTS
    assert await stored_count(owner) == UCDP_EVENTS


async def test_ucdp_rows_report_their_line_source_id_and_reason(client: Client) -> None:
    """Rows breaking low <= best <= high are flagged with their line and UCDP id; the
    unmappable rows are rejected naming their column."""
    result = await import_file(client, UCDP, "ucdp-ged")
    assert [(f["line"], f["source_id"], f["field"]) for f in result["flags"]] == [
        (7, "244703", "date_prec,low,best,high"),
        (8, "244704", "date_prec"),
        (14, "244710", "low,best,high"),
    ]
    assert all(
        "low <= best <= high" in f["reason"] for f in result["flags"] if f["source_id"] != "244704"
    )
    assert [(e["line"], e["source_id"], e["field"]) for e in result["errors"]] == [
        (11, "244707", "side_a"),
        (12, "244708", "latitude"),
        (13, "244709", "date_start"),
    ]


async def test_a_flagged_ucdp_row_is_stored_as_given_with_the_raw_row(client: Client) -> None:
    """Row 244703's casualties keep low 40 > best 30 as given, and notes hold the row."""
    await import_file(client, UCDP, "ucdp-ged")
    response = await client.get(f"/v1/events/{event_id('ucdp-ged', '244703', 'casualties')}")
    assert response.status_code == 200, response.text
    stored = response.json()["event"]["event"]
    assert stored["type"] == "casualties"
    assert stored["casualties"] == {"killed": 30, "low": 40, "high": 55}
    assert stored["occurred"] == {"start": "2017-06-01", "end": "2017-06-30", "precision": "month"}
    assert json.loads(stored["notes"])["id"] == "244703"
    assert stored["place"]["precision"] == "region"
