"""The UCDP GED reader (service/interop/ucdp.py) on the project's own fixture file.

tests/fixtures/interop/ucdp-ged.csv holds one row for each date_prec and where_prec code, quoted
cells with commas and newlines, non-ASCII place names, empty cells, two rows breaking
low <= best <= high and three rows that cannot be mapped.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.interop_more import ucdp_file
from contracts.events import Event
from service.domain.time import valid_interval
from service.interop import ucdp
from service.interop.places import PlaceIndex
from service.interop.prepare import Refused, prepare_row
from service.interop.rows import PlaceRef, SourceRow, event_id, read_csv

FIXTURE = Path(__file__).parents[1] / "fixtures" / "interop" / "ucdp-ged.csv"
HEADER = (
    "id,side_a,side_b,number_of_sources,source_article,source_office,source_date,where_prec,"
    "where_coordinates,adm_1,adm_2,latitude,longitude,country,event_clarity,date_prec,"
    "date_start,date_end,deaths_a,deaths_b,deaths_civilians,deaths_unknown,best,high,low"
)
GOOD = (
    '9,Government of Syria,IS,1,"SANA,2017-06-06,x",SANA,2017-06-06,1,Dayr Hafir town,'
    "Aleppo governorate,Al Bab district,36.16,37.70,Syria,1,1,2017-06-06,2017-06-06,1,2,0,0,3,3,3"
)


def rows() -> dict[str, SourceRow]:
    """The fixture's rows by UCDP id."""
    return {r.source_id or "": r for r in ucdp.read(FIXTURE.read_bytes())}


def one(line: str) -> SourceRow:
    """The single row of a file made of HEADER and ``line``."""
    [row] = ucdp.read(f"{HEADER}\n{line}\n".encode())
    return row


def with_cell(column: str, value: str, **more: str) -> str:
    """GOOD with cells replaced (no cell of GOOD holds a comma but the quoted article)."""
    names = HEADER.split(",")
    cells = GOOD.replace('"SANA,2017-06-06,x"', "ARTICLE").split(",")
    for name, text in {column: value, **more}.items():
        cells[names.index(name)] = text
    return ",".join(cells).replace("ARTICLE", '"SANA,2017-06-06,x"')


def test_a_row_becomes_a_clash_and_a_casualties_event() -> None:
    """Row 244657: sides slugged from side_a/side_b, the exact day, the exact point with its
    kind split off the name, Reuters as the source with SANA in the attribution, two sources
    of a clear event make it confirmed (credibility 2), best/low/high as killed/low/high."""
    row = rows()["244657"]
    assert row.line == 2
    assert row.error is None
    assert row.flags == ()
    assert row.place == PlaceRef(
        name="Maskanah",
        lat=35.96,
        lon=38.04,
        precision="exact",
        kind="town",
        admin=("Syria", "Aleppo governorate", "Manbij district"),
    )
    clash, deaths = row.events
    common = {
        "side": "government-of-syria",
        "actor": "Government of Syria",
        "opponent": "is",
        "occurred": {"start": "2017-06-03", "precision": "day"},
        "source": {"name": "Reuters", "attribution": "Reuters; SANA", "published_at": "2017-06-04"},
        "credibility": 2,
        "hedge": "confirmed",
        "quote": 'Reuters,2017-06-04,"Syrian army takes Maskanah, the last IS town in Aleppo '
        'province";\nSANA,2017-06-03,"Army units liberate Maskanah, clear mines"',
        "notes": row.raw,
    }
    assert clash == {
        "id": str(event_id("ucdp-ged", "244657", "clash")),
        "type": "clash",
        **common,
    }
    assert deaths == {
        "id": str(event_id("ucdp-ged", "244657", "casualties")),
        "type": "casualties",
        **common,
        "casualties": {"killed": 12, "low": 10, "high": 15},
    }


def test_the_raw_row_is_kept_whole_in_notes() -> None:
    """notes is the row as a JSON object of every column, newlines and non-ASCII as given."""
    row = rows()["244701"]
    raw = json.loads(row.events[0]["notes"])
    assert raw["where_coordinates"] == "Ḥalab city"
    assert raw["adm_2"] == "Jabal Sim'an district"
    assert raw["dyad_name"] == ""
    assert len(raw) == 49
    assert json.loads(rows()["244657"].raw)["source_article"].count("\n") == 1


@pytest.mark.parametrize(
    ("source_id", "occurred"),
    [
        ("244657", {"start": "2017-06-03", "precision": "day"}),
        ("244701", {"start": "2017-06-05", "end": "2017-06-09", "precision": "week"}),
        ("244702", {"start": "2017-06-12", "end": "2017-06-16", "precision": "week"}),
        ("244703", {"start": "2017-06-01", "end": "2017-06-30", "precision": "month"}),
        ("244704", {"start": "2017-01-01", "end": "2017-12-31", "precision": "year"}),
    ],
)
def test_date_prec_maps_to_the_time_precision(source_id: str, occurred: dict[str, str]) -> None:
    """date_prec 1..5 (exact day, 2-6 days, week, month, year) -> day, week, week, month, year;
    date_start/date_end keep the day, an end equal to the start is left out."""
    assert rows()[source_id].events[0]["occurred"] == occurred


@pytest.mark.parametrize(
    ("source_id", "name", "kind", "precision"),
    [
        ("244657", "Maskanah", "town", "exact"),
        ("244701", "Ḥalab", "city", "near"),
        ("244702", "Dayr az Zawr", "district", "district"),
        ("244703", "Ar Raqqah governorate", None, "region"),
        ("244704", "eastern Homs", None, "region"),
        ("244705", "Syria", None, "country"),
        ("244706", "Eastern Mediterranean", None, "region"),
    ],
)
def test_where_prec_maps_to_the_place_precision(
    source_id: str, name: str, kind: str | None, precision: str
) -> None:
    """where_prec 1..7 -> exact, near, district, region, region, country, region; a trailing
    kind word the contract knows leaves the name and becomes the kind."""
    place = rows()[source_id].place
    assert place is not None
    assert (place.name, place.kind, place.precision) == (name, kind, precision)


@pytest.mark.parametrize(
    ("source_id", "hedge", "credibility"),
    [
        ("244657", "confirmed", 2),  # clarity 1, 2 sources
        ("244701", "reported", 3),  # clarity 1, 1 source
        ("244702", "reported", 3),  # clarity 2, 3 sources
        ("244703", "reported", 4),  # clarity 2, 1 source
        ("244704", "reported", 3),  # clarity 1, sources -1 (unknown)
        ("244705", "reported", 6),  # clarity and sources empty
    ],
)
def test_clarity_and_sources_grade_the_events(source_id: str, hedge: str, credibility: int) -> None:
    """event_clarity and number_of_sources give hedge and credibility by the documented table."""
    for ev in rows()[source_id].events:
        assert (ev["hedge"], ev["credibility"]) == (hedge, credibility)


def test_rows_breaking_low_best_high_are_imported_as_given_and_flagged() -> None:
    """low > best (244703) and best > high (244710): the figures are kept, not repaired, and
    the row is flagged naming low, best and high."""
    raqqa, jarrah = rows()["244703"], rows()["244710"]
    assert raqqa.events[1]["casualties"] == {"killed": 30, "low": 40, "high": 55}
    assert jarrah.events[1]["casualties"] == {"killed": 5, "low": 3, "high": 4}
    for row in (raqqa, jarrah):
        assert row.error is None
        assert sum("low <= best <= high" in flag for flag in row.flags) == 1
    assert jarrah.fields == ("low", "best", "high")
    # 244703 is month-precise too: that flag names date_prec.
    assert raqqa.fields == ("date_prec", "low", "best", "high")


def test_empty_low_and_high_are_left_out() -> None:
    """244704 has only a best estimate: casualties carries killed alone; its only flag is
    about its year precision (date_prec 5), none about the figures."""
    row = rows()["244704"]
    assert row.events[1]["casualties"] == {"killed": 17}
    assert row.fields == ("date_prec",)


@pytest.mark.parametrize(
    ("source_id", "line", "column", "words"),
    [
        ("244707", 11, "side_a", "side_a is empty"),
        ("244708", 12, "latitude", "latitude is not a number: '36.16x'"),
        ("244709", 13, "date_start", "date_start is empty"),
    ],
)
def test_unmappable_rows_are_errors_naming_the_column(
    source_id: str, line: int, column: str, words: str
) -> None:
    """No side_a, a bad coordinate, no date: an error row with its line, id and column, no
    events; the rows after it still map."""
    row = rows()[source_id]
    assert (row.line, row.events, row.fields) == (line, (), (column,))
    assert row.error is not None
    assert words in row.error


def test_every_row_of_the_fixture_is_read_with_its_starting_line() -> None:
    """Eleven records; the first spans two lines (a newline in a quoted cell), so the next
    starts on line 4."""
    lines = [r.line for r in ucdp.read(FIXTURE.read_bytes())]
    assert lines == [2, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14]
    assert sum(1 for r in rows().values() if r.error is None) == 8


def test_ids_are_stable_across_reads() -> None:
    """Two reads of the same bytes give the same events, ids included (idempotent imports)."""
    first = list(ucdp.read(FIXTURE.read_bytes()))
    second = list(ucdp.read(FIXTURE.read_bytes()))
    assert first == second
    ids = [ev["id"] for r in first for ev in r.events]
    assert len(ids) == len(set(ids)) == 16


def test_every_event_decodes_with_the_contract() -> None:
    """Each event, with a place added, is a valid wire-contract event whose valid time parses."""
    for row in ucdp.read(FIXTURE.read_bytes()):
        for ev in row.events:
            decoded: Any = msgspec.convert(ev | {"place": {"id": "x"}}, Event)
            start, end = valid_interval(decoded.occurred)
            assert start < end


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("date_start", "03/06/2017", "date_start is not a date"),
        ("date_end", "2017-06-01", "date_end (2017-06-01) is before date_start"),
        ("date_prec", "9", "date_prec '9' is not a UCDP date precision code"),
        ("where_prec", "0", "where_prec '0' is not a UCDP location precision code"),
        ("longitude", "190", "longitude 190 is outside -180..180"),
        ("latitude", "", "latitude is empty"),
        ("best", "", "best is empty"),
        ("low", "-2", "low is not a whole number of deaths >= 0"),
        ("high", "many", "high is not a whole number of deaths >= 0"),
    ],
)
def test_each_unmappable_cell_is_named(column: str, value: str, words: str) -> None:
    """Every cell that prevents the mapping is reported by its column."""
    row = one(with_cell(column, value))
    assert row.events == ()
    assert row.fields == (column,)
    assert row.error is not None
    assert words in row.error


def test_no_id_is_an_error() -> None:
    """Without the source's id there is no deterministic event id: the row is an error."""
    row = one(with_cell("id", ""))
    assert (row.source_id, row.fields, row.events) == (None, ("id",), ())


def test_no_place_name_at_all_is_an_error() -> None:
    """where_coordinates, adm_2, adm_1 and country all empty: nothing names the place."""
    line = with_cell("where_coordinates", "", adm_1="", adm_2="", country="")
    row = one(line)
    assert row.fields == ("where_coordinates",)


def test_the_place_falls_back_to_the_admin_names() -> None:
    """An empty where_coordinates names the place by adm_2."""
    place = one(with_cell("where_coordinates", "")).place
    assert place is not None
    assert (place.name, place.kind) == ("Al Bab", "district")


def test_deaths_that_do_not_sum_to_best_are_flagged() -> None:
    """deaths_a + deaths_b + deaths_civilians + deaths_unknown != best: imported, flagged."""
    row = one(with_cell("deaths_unknown", "4"))
    assert row.error is None
    assert row.flags == ("deaths_a + deaths_b + deaths_civilians + deaths_unknown = 7, best = 3",)


def test_odd_grading_cells_are_flagged_and_taken_as_unknown() -> None:
    """An event_clarity outside 1-2 grades like an empty one (reported, 6) and is flagged."""
    row = one(with_cell("event_clarity", "3"))
    assert (row.events[0]["hedge"], row.events[0]["credibility"]) == ("reported", 6)
    assert row.fields == ("event_clarity",)


def test_an_empty_date_prec_is_taken_as_a_day_and_flagged() -> None:
    """date_prec empty: the day precision, with a flag naming date_prec."""
    row = one(with_cell("date_prec", ""))
    assert row.events[0]["occurred"] == {"start": "2017-06-06", "precision": "day"}
    assert row.fields == ("date_prec",)


def test_whole_numbers_written_as_floats_are_accepted() -> None:
    """'3.0' (as pandas writes an integer column with gaps) is 3."""
    assert one(with_cell("best", "3.0")).events[1]["casualties"]["killed"] == 3


def test_bytes_that_are_not_utf8_csv_raise_value_error() -> None:
    """A file that is not UTF-8 is refused as a whole, as the CSV reader does."""
    with pytest.raises(ValueError, match="not UTF-8"):
        list(ucdp.read(b"id,side_a\n1,\xff\n"))


def test_the_benchmark_file_maps_like_a_real_export() -> None:
    """bench/interop_more.ucdp_file: the same rng gives the same bytes; almost every row maps,
    a few are flagged or unmappable, and every event decodes with the contract."""
    data = ucdp_file(400, random.Random(3))
    assert data == ucdp_file(400, random.Random(3))
    read = list(ucdp.read(data))
    assert len(read) == 400
    assert sum(1 for r in read if r.error is None) >= 390
    for row in read:
        for ev in row.events:
            msgspec.convert(ev | {"place": {"id": "x"}}, Event)


@pytest.mark.parametrize(
    ("column", "value"),
    [("latitude", "1" * 400), ("longitude", "1e400"), ("best", "1" * 5_000), ("best", "1" * 400)],
)
def test_numbers_too_big_for_float_or_int_are_error_rows(column: str, value: str) -> None:
    """A 400-digit coordinate (float() gives inf) or a count over 4300 digits (int() refuses
    it) makes an error row naming the column, never an exception."""
    row = one(with_cell(column, value))
    assert row.error is not None
    assert row.fields == (column,)


def test_arabic_names_give_distinct_stable_sides_and_places() -> None:
    """Names ASCII cannot spell are not all 'unnamed': each side and each place its own
    stable id (``x-`` + hash of the name)."""
    aleppo = one(with_cell("side_a", "الجيش العربي السوري", where_coordinates="حلب"))
    damascus = one(with_cell("side_a", "هيئة تحرير الشام", where_coordinates="دمشق"))
    sides = [r.events[0]["side"] for r in (aleppo, damascus)]
    assert sides[0] != sides[1]
    assert all(s.startswith("x-") for s in sides)
    assert sides == [
        one(with_cell("side_a", n, where_coordinates="x")).events[0]["side"]
        for n in ("الجيش العربي السوري", "هيئة تحرير الشام")
    ]
    index = PlaceIndex([])
    assert aleppo.place is not None
    assert damascus.place is not None
    first, second = index.resolve(aleppo.place), index.resolve(damascus.place)
    assert first.place_id != second.place_id
    assert first.place_id == PlaceIndex([]).resolve(aleppo.place).place_id
    for row in (aleppo, damascus):
        assert not isinstance(prepare_row(row, PlaceIndex([])), Refused)


_CELL = (
    st.text(max_size=10)
    | st.sampled_from(
        [
            "",
            "1",
            "2",
            "5",
            "7",
            "-1",
            "3.0",
            "2017-06-03",
            "2017-06-01 00:00:00.000",
            "35.9",
            "nan",
        ]
    )
    | st.sampled_from(["1" * 400, "-" + "1" * 400, "1" * 5_000, "1e400"])
)


@settings(max_examples=300, deadline=None)
@given(cells=st.dictionaries(st.sampled_from(HEADER.split(",")), _CELL))
def test_any_cells_map_to_valid_events_or_errors(cells: dict[str, str]) -> None:
    """Whatever cells of a good row hold, the row is an error naming a column or events that
    decode with the contract."""
    [good] = ucdp.read(f"{HEADER}\n{GOOD}\n".encode())
    base = json.loads(good.raw)
    row = ucdp.map_row(2, base | {c: v.strip() for c, v in cells.items()})
    assert (row.error is None) == bool(row.events)
    if row.error is not None:
        assert len(row.fields) == 1
    # What the importer does with the row: an error row is refused, a mapped one prepared
    # whole (its place resolved, every event through the contract).
    outcome = prepare_row(row, PlaceIndex([]))
    assert isinstance(outcome, Refused) == (row.error is not None), outcome
    if not isinstance(outcome, Refused):
        for prepared in outcome[0]:
            assert isinstance(prepared.event, Event)
            valid_interval(prepared.event.occurred)


CODEBOOK: Final = FIXTURE.with_name("ucdp-ged-codebook.csv")


def codebook_rows() -> dict[str, SourceRow]:
    """ucdp-ged-codebook.csv's rows by UCDP id: one row per codebook case."""
    return {r.source_id or "": r for r in ucdp.read(CODEBOOK.read_bytes())}


def test_one_sided_violence_is_informational_not_a_clash() -> None:
    """type_of_violence 3 (IS against civilians) is ``other`` with its code and the deaths,
    never a clash: violence against civilians does not contest the place."""
    main, deaths = codebook_rows()["900001"].events
    assert main["type"] == "other"
    assert main["code"] == "UCDP-GED:one-sided violence"
    assert main["id"] == str(event_id("ucdp-ged", "900001", "other"))
    assert (main["side"], main["opponent"]) == ("is", "civilians")
    assert deaths["casualties"] == {"killed": 6, "low": 6, "high": 8}


def test_non_state_violence_is_a_clash_between_the_two_non_state_sides() -> None:
    """type_of_violence 2 (SDF against IS) contests the place: a clash of side_a against
    side_b, neither of them a government."""
    main, _ = codebook_rows()["900002"].events
    assert (main["type"], main["side"], main["opponent"]) == ("clash", "sdf", "is")
    assert codebook_rows()["900002"].flags == ()


def test_a_month_precise_row_is_informational_and_flagged() -> None:
    """date_prec 4: the fight's day is unknown, so it is ``other`` (not a month of
    contest), flagged naming date_prec; its deaths still cover the month."""
    row = codebook_rows()["900003"]
    main, deaths = row.events
    assert main["type"] == "other"
    assert main["code"] == "UCDP-GED:state-based violence, date_prec 4"
    assert main["occurred"]["precision"] == "month"
    assert deaths["occurred"] == main["occurred"]
    assert row.fields == ("date_prec",)
    assert "informational" in row.flags[0]


def test_the_sentinel_source_date_is_flagged_and_not_a_publication_time() -> None:
    """UCDP's 1753-01-01 in source_date is no publication time: left out and flagged; with a
    real date after it, the real date is taken."""
    row = codebook_rows()["900004"]
    assert all("published_at" not in e["source"] for e in row.events)
    assert row.fields == ("source_date",)
    assert "1753-01-01" in row.flags[0]
    both = ucdp.map_row(2, {**_row_of("900004"), "source_date": "1753-01-01;2017-05-10"})
    assert both.events[0]["source"]["published_at"] == "2017-05-10"


def _row_of(source_id: str) -> dict[str, str]:
    return next(r for _, r in read_csv(CODEBOOK.read_bytes()) if r["id"] == source_id)


def test_a_publication_after_the_import_is_flagged_and_left_out_by_the_importer() -> None:
    """2099-01-01 is after the import's time: the importer stores no publication time and
    flags ``source.published_at``; before 1900 too, whatever the format."""
    row = codebook_rows()["900005"]
    now = datetime(2026, 12, 6, tzinfo=UTC)
    outcome = prepare_row(row, PlaceIndex([]), now=now)
    assert not isinstance(outcome, Refused)
    prepared, flags, field = outcome
    assert all("published_at" not in msgspec.to_builtins(p.event)["source"] for p in prepared)
    assert field == "source.published_at"
    assert flags == [
        "source.published_at 2099-01-01 is after the import (2026-12-06T00:00:00+00:00): "
        "not stored as a publication time"
    ]
    early = SourceRow(
        line=row.line,
        source_id=row.source_id,
        raw=row.raw,
        place=row.place,
        events=tuple(
            {**e, "source": {"name": "X", "published_at": "1899-12-31"}} for e in row.events
        ),
    )
    outcome = prepare_row(early, PlaceIndex([]), now=now)
    assert not isinstance(outcome, Refused)
    assert all("published_at" not in msgspec.to_builtins(p.event)["source"] for p in outcome[0])
    assert "before 1900" in outcome[1][0]


def test_a_type_of_violence_outside_the_codebook_is_rejected_naming_it() -> None:
    """type_of_violence 4 does not exist: the row is an error naming the column."""
    row = codebook_rows()["900006"]
    assert row.error is not None
    assert "type_of_violence" in row.error
    assert row.fields == ("type_of_violence",)
