"""The ACLED reader (service/interop/acled.py) and the place rule (places.py)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.events import Capture, CasualtiesReport, Event, event_decoder
from service.interop import acled
from service.interop.formats import READERS
from service.interop.places import (
    MATCH_DISTANCE_KM,
    KnownPlace,
    PlaceIndex,
    distance_km,
    normalise,
)
from service.interop.prepare import Refused, prepare_row
from service.interop.rows import PlaceRef, SourceRow, event_id, raw_json, read_csv

FIXTURE: Final = Path(__file__).resolve().parents[1] / "fixtures" / "interop" / "acled.csv"


def _rows() -> dict[str, SourceRow]:
    return {r.source_id or f"line {r.line}": r for r in acled.read(FIXTURE.read_bytes())}


def _decoded(row: SourceRow, place: str = "sy-test") -> list[Event]:
    """The row's events through the real contract decoder, as the importer sends them."""
    return [
        event_decoder.decode(msgspec.json.encode({**e, "place": {"id": place}})) for e in row.events
    ]


def test_the_registry_names_acled() -> None:
    """``?format=acled`` and ``--format acled`` find the ACLED reader."""
    assert READERS["acled"] is acled.read


def test_every_fixture_row_is_read_with_the_line_it_starts_on() -> None:
    """Quoted cells holding newlines make a record span lines; each row keeps its first line
    and the source's own id."""
    rows = list(acled.read(FIXTURE.read_bytes()))
    assert [(r.line, r.source_id) for r in rows] == [
        (2, "SYR10001"),
        (4, "SYR10002"),
        (5, "SYR10003"),
        (7, "SYR10004"),
        (8, "SYR10005"),
        (9, "TUR2001"),
        (10, "SYR10006"),
        (11, "SYR10007"),
        (12, "SYR10008"),
        (13, "SYR10009"),
    ]


def test_a_territory_capture_maps_with_its_casualties() -> None:
    """'Government regains territory' is a capture by actor1 against actor2; fatalities > 0
    add a casualties event; ids derive from event_id_cnty; ACLED's notes are the quote."""
    row = _rows()["SYR10001"]
    capture, casualties = _decoded(row)
    assert isinstance(capture, Capture)
    assert capture.side == "military-forces-of-syria-2000"
    assert capture.opponent == "islamic-state-syria"
    assert capture.actor == "Military Forces of Syria (2000-)"
    assert capture.occurred.start == "2017-06-03"
    assert capture.occurred.precision == "day"
    assert capture.source.name == "South Front; SANA"
    assert capture.id == event_id("acled", "SYR10001", "capture")
    assert capture.quote is not None
    assert "Maskanah town\nfrom IS" in capture.quote
    assert isinstance(casualties, CasualtiesReport)
    assert casualties.casualties.killed == 12
    assert casualties.id == event_id("acled", "SYR10001", "casualties")


def test_the_original_row_is_kept_in_each_events_notes() -> None:
    """``notes`` holds every column of the row as JSON, non-ASCII as given."""
    row = _rows()["TUR2001"]
    (strike,) = row.events
    kept = json.loads(strike["notes"])
    assert len(kept) == len(acled.COLUMNS)
    assert kept["admin1"] == "Şanlıurfa"
    assert kept["fatalities"] == ""
    assert row.place is not None
    assert row.place.name == "Akçakale"


@pytest.mark.parametrize(
    ("source_id", "kind", "time_precision", "place_precision"),
    [
        ("SYR10002", "clash", "day", "near"),
        ("SYR10003", "strike", "month", "near"),
        ("SYR10004", "base_established", "week", "near"),
        ("TUR2001", "strike", "day", "exact"),
        ("SYR10006", "capture", "day", "exact"),
        ("SYR10008", "capture", "week", "region"),
    ],
)
def test_sub_event_types_and_precision_codes_map(
    source_id: str, kind: str, time_precision: str, place_precision: str
) -> None:
    """Sub-event types give the Frontline type; time_precision 1/2/3 gives day/week/month;
    geo_precision 1/2/3 gives exact/near/region."""
    row = _rows()[source_id]
    assert row.error is None
    assert row.events[0]["type"] == kind
    assert row.events[0]["occurred"]["precision"] == time_precision
    assert row.place is not None
    assert row.place.precision == place_precision
    _decoded(row)  # every mapped event is one the contract accepts


def test_unmapped_rows_are_errors_naming_the_column() -> None:
    """A protest has no Frontline meaning; an unreadable date is named too. No events."""
    rows = _rows()
    protest, bad_date = rows["SYR10005"], rows["SYR10009"]
    assert protest.fields == ("sub_event_type",)
    assert protest.error is not None
    assert "Peaceful protest" in protest.error
    assert bad_date.fields == ("event_date",)
    assert protest.events == bad_date.events == ()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("latitude", "north"),
        ("latitude", "91"),
        ("fatalities", "-1"),
        ("fatalities", "many"),
        ("time_precision", "4"),
        ("geo_precision", "9"),
        ("actor1", ""),
        ("location", ""),
    ],
)
def test_bad_cells_are_errors_naming_their_column(column: str, value: str) -> None:
    """Each unreadable cell makes an error row naming its column, never an exception."""
    record = dict(json.loads(_rows()["SYR10001"].raw))
    record[column] = value
    row = acled.row(7, record)
    assert row.error is not None
    assert row.fields == (column,)
    assert row.line == 7
    assert row.source_id == "SYR10001"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\xff\xfe", "UTF-8"),
        (b"id,date\n1,2017-06-03\n", "event_id_cnty"),
    ],
)
def test_unreadable_files_raise_value_error(data: bytes, message: str) -> None:
    """A file that is not an ACLED CSV as a whole is a ValueError saying why."""
    with pytest.raises(ValueError, match=message):
        list(acled.read(data))


def test_a_header_alone_is_no_rows() -> None:
    """An export with no events reads as nothing."""
    assert list(acled.read(",".join(acled.COLUMNS).encode())) == []


# --- the place rule -------------------------------------------------------------------------

MANSURAH_RAQQA = PlaceRef(name="Al Mansurah", lat=35.8286, lon=38.7606)
MANSURAH_HAMA = PlaceRef(name="Al-Mansurah", lat=35.02, lon=36.60)


def test_names_normalise_without_accents_case_or_punctuation() -> None:
    """'Akçakale' and 'AKCAKALE', 'Al-Mansurah' and 'al mansurah' are the same name."""
    assert normalise("Akçakale") == normalise("AKCAKALE") == "akcakale"
    assert normalise("Al-Mansurah") == normalise(" al  mansurah ") == "al mansurah"


def test_arabic_names_give_distinct_stable_sides_and_places() -> None:
    """Names ASCII cannot spell are not all 'unnamed': each actor is its own side and each
    place its own id (``x-`` + hash of the name), the same whatever is imported first."""
    base = dict(json.loads(_rows()["SYR10001"].raw))
    aleppo = acled.row(2, base | {"actor1": "الجيش العربي السوري", "location": "حلب"})
    damascus = acled.row(3, base | {"actor1": "هيئة تحرير الشام", "location": "دمشق"})
    sides = [r.events[0]["side"] for r in (aleppo, damascus)]
    assert sides[0] != sides[1]
    assert all(s.startswith("x-") for s in sides)
    ids: dict[str, set[str]] = {}
    for order in ((aleppo, damascus), (damascus, aleppo)):
        index = PlaceIndex([])
        for r in order:
            assert r.place is not None
            ids.setdefault(r.place.name, set()).add(index.resolve(r.place).place_id)
    assert [len(v) for v in ids.values()] == [1, 1]
    assert len(set.union(*ids.values())) == 2
    for row in (aleppo, damascus):
        assert not isinstance(prepare_row(row, PlaceIndex([])), Refused)


def test_distance_is_great_circle_kilometres() -> None:
    """One degree of latitude is about 111 km."""
    assert distance_km(35.0, 38.0, 36.0, 38.0) == pytest.approx(111.2, abs=0.1)


def test_same_name_nearby_is_the_same_place() -> None:
    """A known place of the same name (or alias) within the distance is the place."""
    index = PlaceIndex([KnownPlace("sy-mansura", "Mansura", ("Al Mansurah",), 35.83, 38.76)])
    match = index.resolve(MANSURAH_RAQQA)
    assert (match.place_id, match.new, match.flag) == ("sy-mansura", False, None)


def test_same_name_far_apart_is_another_place_with_its_own_id() -> None:
    """Two same-named places 200 km apart are never merged: the second gets an id made of its
    name and point; later rows near either find the right one."""
    index = PlaceIndex([])
    first = index.resolve(MANSURAH_RAQQA)
    second = index.resolve(MANSURAH_HAMA)
    assert (first.place_id, first.new) == ("al-mansurah", True)
    assert (second.place_id, second.new) == ("al-mansurah-35-02n-36-60e", True)
    assert index.resolve(PlaceRef("al mansurah", 35.03, 36.61)).place_id == second.place_id
    assert index.resolve(PlaceRef("AL MANSURAH", 35.82, 38.75)).place_id == first.place_id


def test_a_place_without_a_point_matches_by_name_and_is_flagged_when_ambiguous() -> None:
    """No point: the same-named place; several: the smallest id, with a flag."""
    index = PlaceIndex([KnownPlace("b-x", "X", (), 1.0, 1.0), KnownPlace("a-x", "X", (), 9, 9)])
    match = index.resolve(PlaceRef("x"))
    assert (match.place_id, match.new) == ("a-x", False)
    assert match.flag is not None
    assert PlaceIndex([]).resolve(PlaceRef("Y")).place_id == "y"


def test_a_known_place_without_a_point_is_taken_only_when_alone_and_flagged() -> None:
    """A registered place with no point may be anywhere: taken when it is the only one of the
    name, with a flag saying so."""
    match = PlaceIndex([KnownPlace("sy-x", "X")]).resolve(PlaceRef("X", 1.0, 1.0))
    assert (match.place_id, match.new) == ("sy-x", False)
    assert match.flag is not None


@given(
    st.floats(-60, 60),
    st.floats(-170, 170),
    st.floats(0, 2 * MATCH_DISTANCE_KM),
)
def test_matching_follows_the_distance(lat: float, lon: float, km: float) -> None:
    """A same-named place ``km`` north is matched exactly when ``km`` is within the rule's
    distance; otherwise a distinct id is registered."""
    index = PlaceIndex([KnownPlace("p", "P", (), lat, lon)])
    moved = lat + km / 111.195
    match = index.resolve(PlaceRef("P", moved, lon))
    if distance_km(lat, lon, moved, lon) <= MATCH_DISTANCE_KM:
        assert match.place_id == "p"
    else:
        assert match.new
        assert match.place_id != "p"


# --- the ACLED export -------------------------------------------------------------------------


def test_an_event_from_elsewhere_is_written_from_its_fields() -> None:
    """A Frontline event not imported from ACLED: id FL<position>, type table, precision codes,
    actor or side, the place's name and point, the quote as notes, recorded_at as Unix time."""
    event = event_decoder.decode(
        msgspec.json.encode({
            "type": "strike",
            "place": {"id": "sy-raqqa", "name": "Raqqa", "lat": 35.95, "lon": 39.01,
                      "precision": "near"},
            "side": "us-coalition",
            "occurred": {"start": "2017-06-01T10:00:00+00:00", "precision": "week"},
            "source": {"name": "Reuters"},
            "quote": "Coalition jets struck Raqqa, a city of 200,000",
        })
    )  # fmt: skip
    recorded = datetime(2017, 6, 2, tzinfo=UTC)
    exported = acled.export_row(
        position=7,
        event_id="id-7",
        kind="strike",
        place_id="sy-raqqa",
        recorded_at=recorded,
        event=event,
    )
    assert exported is not None
    row = dict(zip(acled.EXPORT_COLUMNS, exported, strict=True))
    assert row["event_id_cnty"] == "FL7"
    assert (row["event_date"], row["year"], row["time_precision"]) == ("2017-06-01", "2017", "2")
    assert row["sub_event_type"] == "Shelling/artillery/missile attack"
    assert (row["actor1"], row["actor2"]) == ("us-coalition", None)
    assert (row["location"], row["latitude"], row["geo_precision"]) == ("Raqqa", 35.95, "2")
    assert (row["notes"], row["fatalities"]) == (
        "Coalition jets struck Raqqa, a city of 200,000",
        0,
    )
    assert row["timestamp"] == int(recorded.timestamp())
    assert (row["frontline_id"], row["position"], row["place_id"]) == ("id-7", 7, "sy-raqqa")


def _capture_row(side: str, state_force: Any = acled.named_state_force) -> dict[str, object]:
    """The ACLED export row of a capture of Maskanah by ``side``."""
    event = event_decoder.decode(
        msgspec.json.encode({
            "type": "capture",
            "place": {"id": "sy-maskanah", "name": "Maskanah", "lat": 35.96, "lon": 38.04},
            "side": side,
            "occurred": {"start": "2017-06-03"},
            "source": {"name": "Reuters"},
        })
    )  # fmt: skip
    exported = acled.export_row(
        position=1,
        event_id="id-1",
        kind="capture",
        place_id="sy-maskanah",
        recorded_at=datetime(2017, 6, 4, tzinfo=UTC),
        event=event,
        state_force=state_force,
    )
    assert exported is not None
    return dict(zip(acled.EXPORT_COLUMNS, exported, strict=True))


@pytest.mark.parametrize(
    ("side", "sub_event"),
    [
        ("syrian-government", "Government regains territory"),
        ("military-forces-of-syria-2000", "Government regains territory"),
        ("police-forces-of-iraq-2014", "Government regains territory"),
        ("government-of-syria", "Government regains territory"),
        ("isis", "Non-state actor overtakes territory"),
        ("sdf", "Non-state actor overtakes territory"),
        ("free-syrian-army", "Non-state actor overtakes territory"),
        ("governments-watch", "Non-state actor overtakes territory"),
    ],
)
def test_a_capture_exports_by_the_kind_of_its_side(side: str, sub_event: str) -> None:
    """A state force regains territory, a non-state actor overtakes it: without a registry,
    the sides the datasets name as state forces (``Military Forces of``, ``Police Forces of``,
    ``Government of``, ``<country>-government``) are governments, every other side is not."""
    row = _capture_row(side)
    assert (row["disorder_type"], row["event_type"], row["sub_event_type"]) == (
        "Political violence",
        "Battles",
        sub_event,
    )


def test_a_given_kind_of_side_decides_over_the_naming_fallback() -> None:
    """The export asks ``state_force`` (a registry's kinds, when there is one) first."""
    assert _capture_row("isis", lambda side: side == "isis")["sub_event_type"] == (
        "Government regains territory"
    )
    assert _capture_row("syrian-government", lambda side: False)["sub_event_type"] == (
        "Non-state actor overtakes territory"
    )


def test_an_imported_record_is_one_row_as_given_from_its_main_event() -> None:
    """The raw row in notes comes back cell for cell, fatalities too, on the main event's
    row; the casualties event derived from it has no row of its own (no duplicate
    event_id_cnty)."""
    row = _rows()["SYR10001"]
    capture, casualties = _decoded(row)
    recorded = datetime(2026, 1, 1, tzinfo=UTC)
    first, second = (
        acled.export_row(
            position=n, event_id="x", kind=kind, place_id="maskanah", recorded_at=recorded, event=e
        )
        for n, kind, e in ((1, "capture", capture), (2, "casualties", casualties))
    )
    original = json.loads(row.raw)
    assert second is None
    assert first is not None
    assert list(first[: len(acled.COLUMNS)]) == [original[c] for c in acled.COLUMNS]
    assert original["fatalities"] == "12"


def test_frontline_export_columns_are_not_kept_in_the_raw_row() -> None:
    """A row of Frontline's ACLED export, imported again, keeps the same raw row (and so the
    same events) as the original: the five Frontline columns are left out."""
    original = _rows()["SYR10001"]
    exported = json.loads(original.raw) | {
        "frontline_id": "x",
        "position": "3",
        "type": "capture",
        "place_id": "sy-maskanah",
        "recorded_at": "2026-01-01 00:00:00+00:00",
    }
    again = acled.row(original.line, exported)
    assert again.raw == original.raw
    assert again.events == original.events


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("latitude", "1" * 400),
        ("longitude", "-" + "9" * 400),
        ("fatalities", "1" * 5_000),
        ("fatalities", "1" * 400),
    ],
)
def test_numbers_too_big_for_float_or_int_are_refused_rows(column: str, value: str) -> None:
    """A 400-digit coordinate (float() gives inf) or a fatalities figure over 4300 digits
    (int() refuses it): that row is refused, by the reader or the contract, never raised."""
    record = dict(json.loads(_rows()["SYR10001"].raw))
    record[column] = value
    row = acled.row(7, record)
    outcome = prepare_row(row, PlaceIndex([]))
    assert isinstance(outcome, Refused)
    assert outcome.field is not None


_cells = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["1" * 400, "-" + "1" * 400, "1" * 5_000, "1e400"]),
    st.sampled_from(["", "1", "2", "3", "0", "-1", "91", "35.96", "2017-06-03", "3 June 2017"]),
    st.sampled_from(sorted(acled.SUB_EVENT_TYPES)),
)


@given(st.fixed_dictionaries(dict.fromkeys(acled.COLUMNS, _cells)))
def test_any_record_maps_or_is_refused_never_raises(record: dict[str, str]) -> None:
    """Whatever the cells hold, a record is an error row naming a column, or events whose
    place resolves and which the contract either accepts or refuses as a rejected row (the
    importer's ``prepare_row``): never an exception, so never a 500."""
    row = acled.row(2, {k: v.strip() for k, v in record.items()})
    if row.error is not None:
        assert len(row.fields) == 1
        assert row.fields[0] in acled.COLUMNS
        assert not row.events
    outcome = prepare_row(row, PlaceIndex([]))
    if row.error is not None:
        assert isinstance(outcome, Refused)
    if not isinstance(outcome, Refused):
        prepared, _, _ = outcome
        assert [p.id for p in prepared] == [uuid.UUID(e["id"]) for e in row.events]


def _stdlib_raw(record: dict[str, str]) -> str:
    """How ``rows.raw_json`` wrote a record before it used msgspec."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def test_the_raw_row_of_every_fixture_row_is_the_text_stored_before() -> None:
    """The raw text kept in notes (and so the stored bytes of files imported before) is
    byte-identical to the stdlib json text it was made with before msgspec."""
    records = dict(read_csv(FIXTURE.read_bytes()))
    rows = list(acled.read(FIXTURE.read_bytes()))
    assert len(rows) == len(records) == 10
    for row in rows:
        expected = _stdlib_raw(records[row.line])
        assert row.raw.encode() == expected.encode()
        assert all(e["notes"].encode() == expected.encode() for e in row.events)


_TEXT: Final = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@given(st.dictionaries(_TEXT, _TEXT, max_size=6))
def test_raw_json_writes_what_stdlib_json_wrote(record: dict[str, str]) -> None:
    """Any record of UTF-8 text (control characters, quotes, non-ASCII, U+2028 ...)."""
    assert raw_json(record).encode() == _stdlib_raw(record).encode()


def test_raw_json_keeps_non_ascii_and_escapes_control_characters() -> None:
    """raw_json writes what the standard library's json.dumps wrote: non-ASCII kept as is,
    control characters, quotes and backslashes escaped."""
    record = {"location": "Akçakale \u2028 حلب", "notes": 'a "b"\n\t\x01\x7f\\ 😀'}
    assert raw_json(record) == _stdlib_raw(record)
    assert "Akçakale" in raw_json(record)
    assert "\\u0001" in raw_json(record)
