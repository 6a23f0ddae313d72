"""The MAVERICK reader (service/interop/maverick.py) on the project's own fixture file.

tests/fixtures/interop/maverick.csv: event MAV-E-17 (a car bomb in Tabqa) told by five reports
that disagree on the deaths (12, 15, 9, 21, 14); event MAV-E-18 with a sentinel publication
date and a report naming only the country; MAV-E-19's three reports, one with a date MAVERICK
does not write, one with deaths in words, one whose source is not ``Outlet (date) headline``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import msgspec
import pytest

from contracts.events import Event
from service.interop import maverick
from service.interop.formats import READERS, read_all
from service.interop.places import PlaceIndex
from service.interop.prepare import Refused, prepare_row
from service.interop.rows import PlaceRef, SourceRow, event_id

FIXTURE: Final = Path(__file__).parents[1] / "fixtures" / "interop" / "maverick.csv"
HEADER: Final = (
    "id,event_id,country,city,location,date_start,actor1,deaths_best,injuries_best,source\n"
)


def rows() -> dict[str, SourceRow]:
    """The fixture's reports by MAVERICK report id."""
    return {r.source_id or "": r for r in maverick.read(FIXTURE.read_bytes())}


def one(line: str) -> SourceRow:
    """The single report of a file with the header and ``line``."""
    [row] = maverick.read((HEADER + line + "\n").encode())
    return row


def test_maverick_is_a_registered_format() -> None:
    """``maverick`` is a format name of POST /v1/imports and ``frontline import``."""
    assert READERS["maverick"] is maverick.read
    assert len(read_all("maverick", FIXTURE.read_bytes())) == 10


def test_a_report_is_one_casualties_event_with_outlet_date_and_headline() -> None:
    """The first report: one casualties event, the outlet and publication date parsed from
    ``source``, the headline as quote, actor1 as the side, deaths and injuries as figures."""
    row = rows()["MAV-1001"]
    [event] = row.events
    assert event["id"] == str(event_id("maverick", "MAV-1001", "casualties"))
    assert event["type"] == "casualties"
    assert (event["side"], event["actor"]) == ("islamic-state", "Islamic State")
    assert event["occurred"] == {"start": "2017-05-09", "precision": "day"}
    assert event["source"] == {"name": "Reuters", "published_at": "2017-05-10"}
    assert event["quote"] == "Car bomb kills 12 at Tabqa dam checkpoint"
    assert event["casualties"] == {"killed": 12, "wounded": 20}
    assert "relates_to" not in event
    assert row.flags == ()


def test_the_place_is_the_city_in_its_country_without_a_point() -> None:
    """City and country name the place; there is no point, and ``precision`` says the
    report locates it no closer than the city (``district``), or the country alone."""
    assert rows()["MAV-1001"].place == PlaceRef(
        name="Tabqa", precision="district", admin=("Syria",)
    )
    assert rows()["MAV-1007"].place == PlaceRef(name="Syria", precision="country")


def test_the_reports_of_one_event_confirm_its_first_report() -> None:
    """MAV-E-17's four later reports each confirm the first one: the incident's reports are
    linked, with every figure kept as its outlet gave it (12, 15, 9, 21, 14)."""
    first = str(event_id("maverick", "MAV-1001", "casualties"))
    reports = [rows()[f"MAV-100{n}"].events[0] for n in range(1, 6)]
    assert [r["casualties"]["killed"] for r in reports] == [12, 15, 9, 21, 14]
    assert [r.get("relates_to") for r in reports[1:]] == [
        [{"event": first, "relation": "confirms"}]
    ] * 4
    assert reports[4]["source"]["name"] == "Hawar News (ANHA)"


def test_a_report_naming_another_place_is_not_linked_and_is_flagged() -> None:
    """Links stay within one place: MAV-1007 (Syria) is not linked to MAV-1006 (Tabqa)."""
    row = rows()["MAV-1007"]
    assert "relates_to" not in row.events[0]
    assert row.fields == ("city",)


def test_a_sentinel_publication_date_is_flagged_and_left_out() -> None:
    """(1753-01-01) is no publication date: the outlet is kept, the date left out, flagged."""
    row = rows()["MAV-1006"]
    assert row.events[0]["source"] == {"name": "Enab Baladi"}
    assert row.fields == ("source",)
    assert "1753-01-01" in row.flags[0]


def test_a_source_not_written_outlet_date_headline_is_the_outlet_and_flagged() -> None:
    """'a local activist' has no bracketed date: it is the outlet, with no date, flagged."""
    row = rows()["MAV-1010"]
    assert row.events[0]["source"] == {"name": "a local activist"}
    assert row.fields == ("source",)


@pytest.mark.parametrize(
    ("line", "column"),
    [
        (",E,Syria,Tabqa,,2017-05-09,,1,,R (2017-05-10) x", "id"),
        ("R1,,Syria,Tabqa,,2017-05-09,,1,,R (2017-05-10) x", "event_id"),
        ("R1,E,Syria,Tabqa,,,,1,,R (2017-05-10) x", "date_start"),
        ("R1,E,Syria,Tabqa,,20 May 2017,,1,,R (2017-05-10) x", "date_start"),
        ("R1,E,Syria,Tabqa,,2017-05-09,,two,,R (2017-05-10) x", "deaths_best"),
        ("R1,E,Syria,Tabqa,,2017-05-09,,-1,,R (2017-05-10) x", "deaths_best"),
        ("R1,E,Syria,Tabqa,,2017-05-09,,1,2.5,R (2017-05-10) x", "injuries_best"),
        ("R1,E,,,,2017-05-09,,1,,R (2017-05-10) x", "city"),
    ],
)
def test_an_unmappable_report_is_an_error_naming_its_column(line: str, column: str) -> None:
    """Each unreadable cell rejects the report, naming the column, never an exception."""
    row = one(line)
    assert row.error is not None
    assert row.fields == (column,)
    assert row.events == ()


def test_the_fixtures_errors_name_their_line_and_column() -> None:
    """MAV-1008 (a date in words) and MAV-1009 (deaths in words) are errors at lines 9, 10."""
    errors = [(r.line, r.source_id, r.fields) for r in rows().values() if r.error]
    assert errors == [(9, "MAV-1008", ("date_start",)), (10, "MAV-1009", ("deaths_best",))]


def test_every_mapped_report_passes_the_contract() -> None:
    """Every mapped report's events decode as contract events with their place resolved."""
    for row in rows().values():
        if row.error is None:
            outcome = prepare_row(row, PlaceIndex([]))
            assert not isinstance(outcome, Refused), outcome
            for prepared in outcome[0]:
                assert msgspec.json.decode(prepared.payload, type=Event).place.lat is None
