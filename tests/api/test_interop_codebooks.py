"""Imports read as the codebooks define them, through the real app and PostgreSQL: UCDP GED's
``type_of_violence`` and ``date_prec`` decide whether a row contests its place, impossible
publication dates are flagged and never stored, and MAVERICK's reports of one event are
stored one event each, linked to each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.interop.rows import event_id
from tests.api.conftest import assert_problem, import_counts, import_file, stored_count

Client = AsyncTestClient[Litestar]
FIXTURES: Final = Path(__file__).resolve().parents[1] / "fixtures" / "interop"
CODEBOOK: Final = (FIXTURES / "ucdp-ged-codebook.csv").read_bytes()
MAVERICK: Final = (FIXTURES / "maverick.csv").read_bytes()


async def _stored(client: Client, fmt: str, source_id: str, role: str) -> dict[str, Any]:
    response = await client.get(f"/v1/events/{event_id(fmt, source_id, role)}")
    assert response.status_code == 200, response.text
    event: dict[str, Any] = response.json()["event"]["event"]
    return event


async def test_only_the_non_state_clash_contests_tabqa(client: Client) -> None:
    """Of Tabqa's rows, the one-sided violence (05-01) and the month-precise fight (June)
    mark nothing contested; the non-state clash contests 05-03 by the SDF, and the
    day-precise clashes of the government on 05-09 and 05-11 their own days."""
    result = await import_file(client, CODEBOOK, "ucdp-ged")
    assert import_counts(result) == (10, 0, 1, 3)
    response = await client.get("/v1/places/tabqa/timeline")
    assert response.status_code == 200, response.text
    contested = [
        (s["valid_from"][:10], s["valid_to"][:10], s["status_by"])
        for s in response.json()["segments"]
        if s["status"] == "contested"
    ]
    assert contested == [
        ("2017-05-03", "2017-05-04", "sdf"),
        ("2017-05-09", "2017-05-10", "government-of-syria"),
        ("2017-05-11", "2017-05-12", "government-of-syria"),
    ]
    one_sided = await _stored(client, "ucdp-ged", "900001", "other")
    assert (one_sided["type"], one_sided["code"]) == ("other", "UCDP-GED:one-sided violence")
    month = await _stored(client, "ucdp-ged", "900003", "other")
    assert month["occurred"]["precision"] == "month"


async def test_impossible_publication_dates_are_flagged_and_not_stored(client: Client) -> None:
    """UCDP's 1753-01-01 and a 2099 date are no publication times: the events are stored
    without one, and the rows are flagged naming the column or field; the unknown
    type_of_violence is rejected naming it, with its line."""
    result = await import_file(client, CODEBOOK, "ucdp-ged")
    flags = {f["source_id"]: (f["line"], f["field"]) for f in result["flags"]}
    assert flags == {
        "900003": (4, "date_prec"),
        "900004": (5, "source_date"),
        "900005": (6, "source.published_at"),
    }
    for source_id in ("900004", "900005"):
        stored = await _stored(client, "ucdp-ged", source_id, "clash")
        assert "published_at" not in stored["source"]
    good = await _stored(client, "ucdp-ged", "900002", "clash")
    assert good["source"]["published_at"] == "2017-05-04"
    [error] = result["errors"]
    assert (error["line"], error["source_id"], error["field"]) == (7, "900006", "type_of_violence")


async def test_maverick_reports_are_one_event_each_linked_to_their_first(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Ten reports: eight stored (one casualties event each), two rejected naming their line
    and column; MAV-E-17's four later reports confirm its first in the log's links; the same
    file again stores nothing new."""
    first = await import_file(client, MAVERICK, "maverick")
    assert import_counts(first) == (8, 0, 2, 3)
    assert [(e["line"], e["source_id"], e["field"]) for e in first["errors"]] == [
        (9, "MAV-1008", "date_start"),
        (10, "MAV-1009", "deaths_best"),
    ]
    target = event_id("maverick", "MAV-1001", "casualties")
    links = await owner.fetch(
        "SELECT id, relation FROM event_links WHERE target = $1 ORDER BY position", target
    )
    assert [(r["id"], r["relation"]) for r in links] == [
        (event_id("maverick", f"MAV-100{n}", "casualties"), "confirms") for n in range(2, 6)
    ]
    report = await _stored(client, "maverick", "MAV-1005", "casualties")
    assert (report["source"]["name"], report["source"]["published_at"]) == (
        "Hawar News (ANHA)",
        "2017-05-12",
    )
    assert report["casualties"] == {"killed": 14, "wounded": 17}
    assert report["place"] == {"id": "tabqa", "name": "Tabqa", "precision": "district"}
    again = await import_file(client, MAVERICK, "maverick")
    assert import_counts(again) == (0, 8, 2, 3)
    assert await stored_count(owner) == 8


async def test_a_maverick_file_without_a_header_is_a_422_naming_the_body(client: Client) -> None:
    """A body that is not UTF-8 CSV is refused whole, naming ``body``; nothing is stored."""
    response = await client.post("/v1/imports?format=maverick", content=b"\xff\xfe")
    assert_problem(response, 422, "body")
