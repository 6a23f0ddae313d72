"""The PLOVER reader (service/interop/plover.py) on the project's own fixture files.

tests/fixtures/interop/plover.json (a JSON array) and plover.jsonl (JSON lines) hold the same
ten records: a COERCE/seize capture, a two-sided ASSAULT/firearms clash with casualties, an
ASSAULT/aerial strike whose 'dozens' dead is a code, a timed ASSAULT/explosives strike, a
PROTEST, an unknown category, a COERCE/arrest, and three records that cannot be mapped. The
JSON lines file also has an empty line and a line cut short.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.interop_more import plover_file
from contracts.events import Event
from service.domain.time import valid_interval
from service.interop import plover
from service.interop.formats import read_all
from service.interop.places import PlaceIndex
from service.interop.prepare import Refused, prepare_row
from service.interop.rows import PlaceRef, SourceRow, event_id

FIXTURES = Path(__file__).parents[1] / "fixtures" / "interop"
ARRAY = FIXTURES / "plover.json"
LINES = FIXTURES / "plover.jsonl"


def rows(path: Path = ARRAY) -> dict[str, SourceRow]:
    """The file's records by PLOVER id."""
    return {r.source_id or f"line {r.line}": r for r in plover.read(path.read_bytes())}


def one(record: dict[str, Any]) -> SourceRow:
    """The single row of a one-line JSON lines file."""
    [row] = plover.read(json.dumps(record).encode())
    return row


BASE: dict[str, Any] = {
    "id": "T-1",
    "date": "2017-06-03",
    "event": "ASSAULT",
    "mode": "firearms",
    "actor": "Syrian Arab Army",
    "location": {"name": "Maskanah", "lat": 35.96, "lon": 38.04},
}


def test_coerce_seize_is_a_capture_by_the_actor() -> None:
    """The first record: side from the actor's identifier, actor as the text says it, the
    recipient as opponent, South Front as source with its url, event_text as quote."""
    row = rows()["SF-20170605-0001"]
    assert (row.line, row.error, row.flags) == (1, None, ())
    assert row.place == PlaceRef(
        name="Maskanah / مسكنة", lat=35.96, lon=38.04, admin=("SYR", "Aleppo")
    )
    [capture] = row.events
    assert capture == {
        "id": str(event_id("plover", "SF-20170605-0001", "event")),
        "type": "capture",
        "side": "syrian-arab-army",
        "actor": "Tiger Forces",
        "opponent": "islamic-state",
        "occurred": {"start": "2017-06-03", "precision": "day"},
        "source": {
            "name": "South Front",
            "url": "https://southfront.org/syrian-army-liberates-maskanah/",
        },
        "quote": "On Saturday, army troops liberated Maskanah itself",
        "notes": row.raw,
    }
    assert json.loads(capture["notes"])["context"] == ["military", "resource"]


def test_two_sided_assault_with_firearms_is_a_clash_with_casualties() -> None:
    """Both parties listed as actors (the spec's ``source`` spelling): the second is the
    opponent; ``dead``/``injured`` become a separate casualties event."""
    row = rows()["SF-20170605-0002"]
    clash, deaths = row.events
    assert clash["type"] == "clash"
    assert (clash["side"], clash["actor"], clash["opponent"]) == (
        "syrian-arab-army",
        "Liwa al-Quds",
        "ahrar-al-sham",
    )
    assert clash["occurred"] == {"start": "2017-06-07", "end": "2017-06-08", "precision": "day"}
    assert row.place == PlaceRef(name="Ḥalab", lat=36.20124, lon=37.16117, admin=("SY", "09"))
    assert deaths["id"] == str(event_id("plover", "SF-20170605-0002", "casualties"))
    assert deaths["type"] == "casualties"
    assert deaths["casualties"] == {"killed": 4, "wounded": 11}


@pytest.mark.parametrize(
    ("source_id", "kind"),
    [
        ("SF-20170605-0002", "clash"),  # firearms
        ("SF-20170605-0003", "strike"),  # aerial
        ("SF-20170605-0004", "strike"),  # explosives
    ],
)
def test_assault_is_a_clash_or_a_strike_by_mode(source_id: str, kind: str) -> None:
    """Ground fighting (firearms) contests the place; aerial and explosive attacks do not."""
    assert rows()[source_id].events[0]["type"] == kind


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("firearms", "clash"),
        ("primitive", "clash"),
        ("", "clash"),
        ("heavy-weapons", "strike"),
        ("suicide-attack", "strike"),
        ("assassinate", "strike"),
        ("Aerial", "strike"),
    ],
)
def test_assault_modes(mode: str, kind: str) -> None:
    """The documented ASSAULT modes: firearms, primitive or none are a clash, others a strike."""
    assert one(BASE | {"mode": mode}).events[0]["type"] == kind


@pytest.mark.parametrize(
    ("source_id", "code"),
    [
        ("SF-20170605-0005", "PLOVER:PROTEST/demo"),
        ("SF-20170605-0006", "PLOVER:CYBERATTACK/"),
        ("SF-20170605-0007", "PLOVER:COERCE/arrest"),
    ],
)
def test_other_categories_are_kept_with_their_code(source_id: str, code: str) -> None:
    """Every category but COERCE/seize and ASSAULT is an 'other' event keeping the code."""
    [ev] = rows()[source_id].events
    assert (ev["type"], ev["code"]) == ("other", code)


def test_a_list_of_categories_is_kept_whole_in_the_code() -> None:
    """Several categories: the first decides the type, the code keeps them all."""
    ev = one(BASE | {"event": ["agree", "CONSULT"], "mode": ["meet", "visit"]}).events[0]
    assert (ev["type"], ev["code"]) == ("other", "PLOVER:AGREE+CONSULT/meet")


def test_a_coded_casualty_figure_is_flagged_and_left_out() -> None:
    """'dozens' dead is flagged and kept only in notes; the 7 injured still count."""
    row = rows()["SF-20170605-0003"]
    assert row.flags == ("dead 'dozens' is not a whole number >= 0: kept in notes only",)
    assert row.fields == ("dead",)
    assert row.events[1]["casualties"] == {"wounded": 7}


def test_a_time_with_an_offset_makes_an_exact_start() -> None:
    """date + 'T' + time (with its offset) is the start, at precision exact."""
    ev = rows()["SF-20170605-0004"].events[0]
    assert ev["occurred"] == {"start": "2017-06-09T08:30:00+03:00", "precision": "exact"}


@pytest.mark.parametrize(
    ("time", "start"),
    [
        ("10:00:00+0300", "2017-06-03T10:00:00+03:00"),
        ("1000Z", "2017-06-03T10:00:00+00:00"),
        ("10:00:00.1234567+03:00", "2017-06-03T10:00:00.123456+03:00"),
        ("10:00:00,5-05:00", "2017-06-03T10:00:00.500000-05:00"),
        ("10:00Z", "2017-06-03T10:00Z"),
    ],
)
def test_other_iso_spellings_of_a_time_are_stored_in_the_contracts(time: str, start: str) -> None:
    """A time with an offset in another ISO 8601 spelling is stored as the contract writes
    it (one it already accepts as given), so the row is imported, not refused."""
    row = one(BASE | {"time": time})
    assert row.events[0]["occurred"] == {"start": start, "precision": "exact"}
    assert not row.flags
    assert not isinstance(prepare_row(row, PlaceIndex([])), Refused)


def test_a_time_the_contract_cannot_hold_keeps_the_day_and_is_flagged() -> None:
    """An offset with seconds (+03:00:30) is valid ISO 8601 but no contract instant: the
    day is kept and the row flagged naming time, as for a time without offset."""
    row = one(BASE | {"time": "10:00:00+03:00:30"})
    assert row.events[0]["occurred"] == {"start": "2017-06-03", "precision": "day"}
    assert row.fields == ("time",)
    assert not isinstance(prepare_row(row, PlaceIndex([])), Refused)


def test_arabic_names_give_distinct_stable_sides_and_places() -> None:
    """Names ASCII cannot spell are not all 'unnamed': each actor its own side, each place
    its own id (``x-`` + hash of the name), the same whatever is imported first."""
    rows = [
        one(BASE | {"id": n, "actor": actor, "location": {"name": place, "lat": lat, "lon": 37}})
        for n, actor, place, lat in (
            ("A", "الجيش العربي السوري", "حلب", 36.2),
            ("B", "هيئة تحرير الشام", "دمشق", 33.5),
        )
    ]
    sides = [r.events[0]["side"] for r in rows]
    assert sides[0] != sides[1]
    assert all(s.startswith("x-") for s in sides)
    places = [r.place for r in rows if r.place is not None]
    forward = [m.place_id for m in map(PlaceIndex([]).resolve, places)]
    backward = [m.place_id for m in map(PlaceIndex([]).resolve, reversed(places))]
    assert forward == backward[::-1]
    assert forward[0] != forward[1]
    for row in rows:
        assert not isinstance(prepare_row(row, PlaceIndex([])), Refused)


def test_a_time_without_offset_keeps_the_day_and_is_flagged() -> None:
    """A naive time cannot be placed in UTC: the day is kept, the record flagged."""
    row = one(BASE | {"time": "08:30"})
    assert row.events[0]["occurred"] == {"start": "2017-06-03", "precision": "day"}
    assert row.fields == ("time",)


@pytest.mark.parametrize(
    ("source_id", "line", "field", "words"),
    [
        ("SF-20170605-0008", 8, "date", "date is missing"),
        ("SF-20170605-0009", 9, "location", "location is missing"),
        ("SF-20170605-0010", 10, "actor", "ASSAULT/firearms maps to a clash, which needs an actor"),
    ],
)
def test_unmappable_records_are_errors_with_their_index(
    source_id: str, line: int, field: str, words: str
) -> None:
    """In an array an error row carries the record's 1-based index, its id and the field."""
    row = rows()[source_id]
    assert (row.line, row.events, row.fields) == (line, (), (field,))
    assert row.error is not None
    assert words in row.error


def test_json_lines_report_lines_and_broken_lines() -> None:
    """JSON lines: each record's line (an empty line counted), and a line cut short is an
    error row at its line with the text as raw; the records after it still map."""
    read = list(plover.read(LINES.read_bytes()))
    assert [r.line for r in read] == [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12]
    broken = read[5]
    assert broken.source_id is None
    assert broken.error is not None
    assert broken.error.startswith("not JSON:")
    assert broken.raw.startswith('{"id": "SF-20170605-0099"')
    assert read[6].source_id == "SF-20170605-0006"
    assert read[6].error is None


def test_array_and_lines_give_the_same_events() -> None:
    """The two fixture files hold the same records: same events, same ids, same errors."""
    by_array = rows(ARRAY)
    by_lines = {k: v for k, v in rows(LINES).items() if not k.startswith("line ")}
    assert by_array.keys() == by_lines.keys()
    for key, row in by_array.items():
        assert (row.events, row.error, row.flags) == (by_lines[key].events, by_lines[key].error,
                                                      by_lines[key].flags)  # fmt: skip


def test_ids_are_stable_across_reads() -> None:
    """Two reads of the same bytes give the same events, ids included."""
    first = list(plover.read(ARRAY.read_bytes()))
    assert first == list(plover.read(ARRAY.read_bytes()))
    ids = [ev["id"] for r in first for ev in r.events]
    assert len(ids) == len(set(ids)) == 10


def test_every_event_decodes_with_the_contract() -> None:
    """Each event of both files, with a place added, is a valid wire-contract event whose
    valid time parses ('other' included)."""
    for path in (ARRAY, LINES):
        for row in plover.read(path.read_bytes()):
            for ev in row.events:
                decoded: Any = msgspec.convert(ev | {"place": {"id": "x"}}, Event)
                start, end = valid_interval(decoded.occurred)
                assert start < end


def test_a_pretty_printed_record_in_json_lines_is_read_from_its_first_line() -> None:
    """A record spread over several lines (not an array) is one record, at its first line."""
    pretty = json.dumps(BASE, indent=2)
    data = ("\n" + pretty + "\n" + json.dumps(BASE | {"id": "T-2"})).encode()
    read = list(plover.read(data))
    after = 2 + pretty.count("\n") + 1
    assert [(r.line, r.source_id) for r in read] == [(2, "T-1"), (after, "T-2")]
    assert after == 14


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"id": ""}, "id", "id is missing"),
        ({"event": []}, "event", "event is missing"),
        ({"date": "06/03/2017"}, "date", "date is not a date"),
        ({"enddate": "2017-06-01"}, "enddate", "enddate (2017-06-01) is before date"),
        ({"location": {"lat": 35.9, "lon": 38.0}}, "location.name", "location.name is missing"),
        ({"location": {"name": "X", "lat": "north", "lon": 1}}, "location.lat", "not a number"),
        ({"location": {"name": "X", "lat": 1, "lon": 200}}, "location.lon", "outside"),
        ({"location": {"name": "X", "lat": 1}}, "location.lon", "needs both coordinates"),
        ({"event": "COERCE", "mode": "seize", "actor": None}, "actor", "needs an actor"),
    ],
)
def test_each_unmappable_field_is_named(change: dict[str, Any], field: str, words: str) -> None:
    """Every field that prevents the mapping is reported by name."""
    row = one(BASE | change)
    assert row.events == ()
    assert row.fields == (field,)
    assert row.error is not None
    assert words in row.error


def test_a_record_that_is_not_an_object_is_an_error() -> None:
    """A JSON value that is not an object cannot be a record."""
    [row] = plover.read(b"[1]")
    assert (row.line, row.source_id, row.error) == (1, None, "the record is not a JSON object")


def test_a_strike_needs_no_actor() -> None:
    """An attack by an unknown party is still a strike, without a side."""
    ev = one(BASE | {"mode": "explosives", "actor": None}).events[0]
    assert ev["type"] == "strike"
    assert "side" not in ev


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "the file is empty"),
        (b" \n ", "the file is empty"),
        (b'[{"id": 1},', "not a JSON array"),
        (b"\xff[]", "not UTF-8"),
    ],
)
def test_unreadable_files_raise_value_error(data: bytes, words: str) -> None:
    """A file that is empty, not UTF-8 or a broken array is refused as a whole."""
    with pytest.raises(ValueError, match=words):
        list(plover.read(data))


@pytest.mark.parametrize("lines", [True, False])
def test_the_benchmark_file_maps_like_a_real_export(lines: bool) -> None:
    """bench/interop_more.plover_file, as JSON lines or an array: the same rng gives the same
    bytes; almost every record maps and every event decodes with the contract."""
    data = plover_file(400, random.Random(3), lines=lines)
    assert data == plover_file(400, random.Random(3), lines=lines)
    assert data.startswith(b"[") is not lines
    read = list(plover.read(data))
    assert len(read) == 400
    assert sum(1 for r in read if r.error is None) >= 390
    for row in read:
        for ev in row.events:
            msgspec.convert(ev | {"place": {"id": "x"}}, Event)


#: Nested past what any JSON parser of Python recurses into.
DEEP: Final = "[" * 100_000 + "]" * 100_000
#: Over the 4300 digits Python converts a decimal string to an int.
HUGE: Final = "1" * 5_000


def test_a_record_nested_too_deeply_is_an_error_row_and_the_next_one_maps() -> None:
    """JSON lines: a record nested 100,000 levels deep is an error row; the next one maps."""
    rows = list(plover.read(f'{{"id": {DEEP}}}\n{json.dumps(BASE)}'.encode()))
    assert [(r.line, r.error is None) for r in rows] == [(1, False), (2, True)]
    assert "nested too deeply" in (rows[0].error or "")


def test_an_integer_over_4300_digits_is_an_error_row_not_an_unreadable_file() -> None:
    """JSON lines: an integer json will not convert fails its record only."""
    rows = list(plover.read(f'{{"id": {HUGE}}}\n{json.dumps(BASE)}'.encode()))
    assert [(r.line, r.error is None) for r in rows] == [(1, False), (2, True)]
    assert "4300 digits" in (rows[0].error or "")


@pytest.mark.parametrize("key", ["lat", "lon"])
def test_a_coordinate_too_big_for_a_float_is_an_error_naming_it(key: str) -> None:
    """A 400-digit integer latitude overflows float(): an error row naming the field."""
    row = one(BASE | {"location": BASE["location"] | {key: 10**400}})
    assert row.error is not None
    assert row.fields == (f"location.{key}",)


@pytest.mark.parametrize(("inner", "words"), [(DEEP, "nested too deeply"), (HUGE, "4300 digits")])
def test_an_array_nobody_can_parse_is_an_unreadable_file(inner: str, words: str) -> None:
    """In an array the records cannot be told apart: the file is refused as a whole, a
    ValueError (422), never a RecursionError or a crash."""
    data = f'[{{"id": {inner}}}, {json.dumps(BASE)}]'.encode()
    with pytest.raises(ValueError, match=words):
        read_all("plover", data)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats()
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=8) | st.integers(),
        "date": st.sampled_from(["2017-06-03", "2017-13-01", "", "2017-06-03T10:00Z"]) | _JSON,
        "enddate": st.sampled_from(["2017-06-04", "2017-06-01"]) | _JSON,
        "time": st.sampled_from(["08:00Z", "08:00", "noon"])
        | st.times(timezones=st.timezones() | st.none()).map(lambda t: t.isoformat())
        | st.from_regex(r"\A[0-2][0-9][0-5][0-9]([.,][0-9]{1,9})?([zZ]|[+-][0-2][0-9][0-5][0-9])\Z")
        | _JSON,
        "event": st.sampled_from(["ASSAULT", "COERCE", "PROTEST", ["ASSAULT", "X"]]) | _JSON,
        "mode": st.sampled_from(["seize", "firearms", "aerial", ""]) | _JSON,
        "actor": _JSON,
        "source": _JSON,
        "recipient": _JSON,
        "location": st.fixed_dictionaries(
            {}, optional={"name": _JSON, "lat": _JSON, "lon": _JSON, "admin": _JSON}
        )
        | _JSON,
        "dead": _JSON,
        "size": _JSON,
        "cite_info": _JSON,
        "text": _JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(records=st.lists(_FIELDS | _JSON, min_size=1, max_size=4))
def test_any_json_records_map_to_valid_events_or_errors(records: list[Any]) -> None:
    """Whatever the records hold, the reader never fails on one: each is an error row or
    events that decode with the contract."""
    for data in (json.dumps(records), "\n".join(json.dumps(r) for r in records)):
        for row in plover.read(data.encode()):
            assert (row.error is None) == bool(row.events)
            # What the importer does with the row: an error row is refused, a mapped one
            # prepared whole (its place resolved, every event through the contract).
            outcome = prepare_row(row, PlaceIndex([]))
            assert isinstance(outcome, Refused) == (row.error is not None), outcome
            if not isinstance(outcome, Refused):
                for prepared in outcome[0]:
                    assert isinstance(prepared.event, Event)
                    valid_interval(prepared.event.occurred)


@settings(max_examples=50, deadline=None)
@given(records=st.lists(_FIELDS | st.sampled_from(["deep", "huge"]), min_size=1, max_size=4))
def test_lines_nested_too_deeply_or_with_huge_integers_fail_only_their_record(
    records: list[Any],
) -> None:
    """JSON lines mixing records with lines no parser reads ("deep": nested 100,000 levels,
    "huge": a 5,000-digit id): one row per line, the bad lines errors, the others mapped."""
    bad = {"deep": f'{{"id": {DEEP}}}', "huge": f'{{"id": {HUGE}}}'}
    lines = [bad[r] if isinstance(r, str) else json.dumps(r) for r in records]
    rows = read_all("plover", "\n".join(lines).encode())
    assert [r.line for r in rows] == list(range(1, len(lines) + 1))
    for record, row in zip(records, rows, strict=True):
        if isinstance(record, str):
            assert (row.error or "").startswith("not JSON")
        else:
            assert row == plover.map_record(row.line, record)


def test_an_unpaired_surrogate_escape_is_an_error_row() -> None:
    """JSON can escape half a surrogate pair, which no UTF-8 text holds: that record is an
    error (its raw kept ASCII-escaped), the next one still maps."""
    bad = b'{"id": "A\\ud800", "date": "2017-06-03", "event": "X", "location": {"name": "n"}}'
    rows = list(plover.read(bad + b"\n" + json.dumps(BASE).encode()))
    assert [(r.line, r.source_id) for r in rows] == [(1, None), (2, "T-1")]
    assert rows[0].error is not None
    assert "surrogate" in rows[0].error
    assert "\\ud800" in rows[0].raw
    assert rows[1].error is None


def test_an_unpaired_surrogate_names_its_field_and_keeps_a_clean_id() -> None:
    """The error row names the field holding the surrogate and keeps the record's id."""
    bad = b'{"id": "P-1", "date": "2017-06-03", "event": "X", "location": {"name": "n\\udfff"}}'
    (row,) = plover.read(bad)
    assert (row.line, row.source_id, row.fields) == (1, "P-1", ("location.name",))
    assert row.error is not None
    assert row.error.startswith("location.name holds an unpaired surrogate")


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"mode": "small-arms"}, "clash"),
        ({"mode": None}, "clash"),
        ({"mode": "artillery", "context": ["military"]}, "clash"),
        ({"mode": "occupy"}, "capture"),
        ({"mode": "seize"}, "capture"),
        ({"mode": "small-arms", "context": ["military", "territory"]}, "capture"),
        ({"mode": "small-arms", "context": "Territory"}, "capture"),
    ],
)
def test_fight_is_a_clash_or_a_capture_when_territory_changed_hands(
    change: dict[str, Any], kind: str
) -> None:
    """PLOVER 0.5's FIGHT is fighting: a clash by the actor, or a capture when its mode or a
    context says the territory changed hands; never the informational ``other``."""
    record = {**BASE, "event": "FIGHT", **change}
    [main] = one({k: v for k, v in record.items() if v is not None}).events
    assert main["type"] == kind
    assert main["side"] == "syrian-arab-army"
    assert "code" not in main


def test_a_fight_without_an_actor_is_an_error_naming_the_actor() -> None:
    """A FIGHT is a clash at least, and a clash needs the side that fought."""
    record = {k: v for k, v in BASE.items() if k != "actor"}
    row = one({**record, "event": "FIGHT"})
    assert row.error is not None
    assert row.fields == ("actor",)


def test_target_is_the_opponent_before_recipient_and_second_actor() -> None:
    """PLOVER 0.5 names the party acted upon ``target``: it is the opponent, ahead of a
    ``recipient`` and of a second actor."""
    record = {
        **BASE,
        "event": "FIGHT",
        "actor": ["Syrian Arab Army", "Liwa al-Quds"],
        "target": {"actor_text": "Islamic State", "identifier_text": "ISIS"},
        "recipient": "Jaysh al-Islam",
    }
    [main] = one(record).events
    assert main["opponent"] == "isis"
    without_target = {k: v for k, v in record.items() if k != "target"}
    assert one(without_target).events[0]["opponent"] == "jaysh-al-islam"
