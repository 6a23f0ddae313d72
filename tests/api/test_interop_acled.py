"""POST /v1/imports?format=acled and GET /v1/export?format=acled, read back as analysts do
(pandas for CSV, GDAL through pyogrio for GeoJSON)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Final

import asyncpg
import pandas
import pyogrio
import pyogrio.raw
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.interop import acled
from service.settings import Settings
from tests.api.conftest import assert_problem, import_file, stored_count
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]
FIXTURE: Final = Path(__file__).resolve().parents[1] / "fixtures" / "interop" / "acled.csv"
#: The fixture: 8 mappable rows, 3 with fatalities (11 events); 2 rows refused.
EVENTS: Final = 11
ROWS: Final = 8
AS_OF: Final = {"valid_at": "2017-06-30"}


async def _import(client: Client, body: bytes, fmt: str = "acled") -> dict[str, Any]:
    return await import_file(client, body, fmt)


async def test_an_acled_file_imports_and_a_second_import_stores_nothing(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Mapped rows are stored; the same file again is all duplicates, nothing new."""
    first = await _import(client, FIXTURE.read_bytes())
    assert (first["accepted"], first["duplicate"], first["rejected"]) == (EVENTS, 0, 2)
    assert first["last_position"] == EVENTS
    again = await _import(client, FIXTURE.read_bytes())
    assert (again["accepted"], again["duplicate"], again["rejected"]) == (0, EVENTS, 2)
    assert again["last_position"] == EVENTS
    assert await stored_count(owner) == EVENTS


async def test_rejected_rows_carry_line_source_id_field_and_reason(client: Client) -> None:
    """Each refused row names its line (where its record starts), the source's own id, the
    column at fault and why; the rest of the file still imports."""
    result = await _import(client, FIXTURE.read_bytes())
    errors = [(e["line"], e["source_id"], e["field"]) for e in result["errors"]]
    assert errors == [(8, "SYR10005", "sub_event_type"), (13, "SYR10009", "event_date")]
    assert "Peaceful protest" in result["errors"][0]["reason"]
    assert result["flagged"] == 0
    assert result["flags"] == []


async def test_a_row_the_contract_refuses_is_rejected_with_its_field(client: Client) -> None:
    """A row that maps but breaks the contract is rejected naming the event field: here a
    25,000-character description, so the row kept in ``notes`` is over its 20,000 limit."""
    header = ",".join(acled.COLUMNS)
    record = json.loads(
        next(r for r in acled.read(FIXTURE.read_bytes()) if r.source_id == "SYR10002").raw
    )
    record["notes"] = "x" * 25_000
    line = ",".join(f'"{record[c]}"' for c in acled.COLUMNS)
    result = await _import(client, f"{header}\n{line}\n".encode())
    assert result["rejected"] == 1
    (error,) = result["errors"]
    assert (error["line"], error["source_id"], error["field"]) == (2, "SYR10002", "notes")


async def test_the_state_shows_the_captured_places_and_same_names_stay_apart(
    client: Client,
) -> None:
    """The captures set control; the two 'Al Mansurah' 100 km apart are two places; the
    clash's report 'near' Maskanah matched the captured one; the GeoJSON opens in GDAL."""
    await _import(client, FIXTURE.read_bytes())
    maskanah = (await client.get("/v1/places/maskanah")).json()
    assert maskanah["place"]["name"] == "Maskanah"
    assert maskanah["version"] == 3  # capture, casualties, clash
    assert (maskanah["place"]["lat"], maskanah["place"]["precision"]) == (35.9617, "exact")
    state = await client.get("/v1/state", params={**AS_OF, "format": "geojson"})
    assert state.status_code == 200, state.text
    by_id = {f["id"]: f for f in state.json()["features"]}
    assert by_id.keys() == {
        "maskanah",
        "al-zkuf",
        "al-mansurah",
        "al-mansurah-35-02n-36-60e",
        "jirah-airbase",
    }
    assert by_id["al-mansurah"]["properties"]["controller"] == "sdf-syrian-democratic-forces"
    assert (
        by_id["al-mansurah-35-02n-36-60e"]["properties"]["controller"]
        == "military-forces-of-syria-2000"
    )
    info = pyogrio.read_info(io.BytesIO(state.content))
    assert (info["features"], info["geometry_type"], info["crs"]) == (5, "Point", "EPSG:4326")
    meta, _, _, columns = pyogrio.raw.read(io.BytesIO(state.content))
    fields = dict(zip(meta["fields"], columns, strict=True))
    assert set(fields["id"]) == set(by_id)
    assert sorted(fields["name"]) == [
        "Al Mansurah",
        "Al Mansurah",
        "Al-Zkuf",
        "Jirah Airbase",
        "Maskanah",
    ]


async def test_unknown_format_is_422_naming_format(client: Client) -> None:
    """No reader by that name: a problem naming ``format`` and the formats there are; a missing
    one: a problem naming ``format``."""
    response = await client.post("/v1/imports?format=gdelt", content=FIXTURE.read_bytes())
    body = assert_problem(response, 422, "format")
    assert "acled" in body["detail"]
    response = await client.post("/v1/imports", content=FIXTURE.read_bytes())
    body = assert_problem(response, 422, "format")
    assert "format" in body["detail"]


async def test_unreadable_file_is_422_and_stores_nothing(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Not UTF-8, not ACLED's columns, or broken CSV at the end: 422, nothing stored."""
    broken_tail = FIXTURE.read_bytes() + b'SYR1,"2017-06-03\n'
    for body in (b"\xff\xfe\x00", b"id,date\n1,2017-06-03\n", broken_tail):
        response = await client.post("/v1/imports?format=acled", content=body)
        assert_problem(response, 422, "body")
    assert await stored_count(owner) == 0


async def test_a_file_over_the_limit_is_413(settings: Settings, admin_key: str) -> None:
    """Over ``FRONTLINE_MAX_IMPORT`` bytes: 413 before anything is read into the log."""
    app = create_app(settings.with_(max_import_bytes=100))
    async with AsyncTestClient(app=app) as small:
        small.headers["authorization"] = f"Bearer {admin_key}"
        response = await small.post("/v1/imports?format=acled", content=FIXTURE.read_bytes())
    assert_problem(response, 413)


async def test_a_read_key_may_not_import(client: Client, owner_pool: asyncpg.Pool) -> None:
    """Importing needs the ingest access, like POST /v1/events."""
    from service.store.keys import KeyStore

    _, key = await KeyStore(owner_pool).create("reader", "read")
    response = await client.post(
        "/v1/imports?format=acled",
        content=FIXTURE.read_bytes(),
        headers={"authorization": f"Bearer {key}"},
    )
    assert_problem(response, 403)


def _frame(body: bytes) -> pandas.DataFrame:
    return pandas.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)


async def test_the_acled_export_opens_in_pandas_and_is_reproducible(client: Client) -> None:
    """A Frontline event first (its Maskanah is the one the ACLED rows then match), then the
    fixture: the export has ACLED's 31 columns plus Frontline's 5; each ACLED record comes
    back as given, once (newlines, non-ASCII and fatalities intact, no row for the casualties
    event derived from it); the Frontline event is written from its fields; the same
    question, the same bytes."""
    native = await client.post("/v1/events", json=event_json())
    assert native.status_code == 201, native.text
    await _import(client, FIXTURE.read_bytes())
    response = await client.get("/v1/export", params={"format": "acled"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "frontline-log-12.acled.csv" in response.headers["content-disposition"]
    frame = _frame(response.content)
    assert tuple(frame.columns) == acled.EXPORT_COLUMNS
    assert len(acled.EXPORT_COLUMNS) == 36
    assert len(frame) == 1 + ROWS
    assert frame["event_id_cnty"].is_unique
    first = frame.iloc[0]
    # The government's capture: ACLED's "Government regains territory", not a takeover.
    assert (first["event_id_cnty"], first["sub_event_type"]) == (
        "FL1",
        "Government regains territory",
    )
    assert (first["actor1"], first["actor2"], first["location"]) == (
        "Tiger Forces",
        "isis",
        "Maskanah",
    )
    assert (first["event_date"], first["time_precision"], first["place_id"]) == (
        "2017-06-03",
        "1",
        "sy-maskanah",
    )
    syr1 = frame[frame["event_id_cnty"] == "SYR10001"]
    assert list(syr1["type"]) == ["capture"]
    assert list(syr1["fatalities"]) == ["12"]
    assert set(syr1["place_id"]) == {"sy-maskanah"}
    assert "Maskanah town\nfrom IS" in syr1.iloc[0]["notes"]
    turkey = frame[frame["event_id_cnty"] == "TUR2001"].iloc[0]
    assert (turkey["admin1"], turkey["location"]) == ("Şanlıurfa", "Akçakale")
    positions = [int(p) for p in frame["position"]]
    assert positions == sorted(positions)
    assert "casualties" not in set(frame["type"])
    again = await client.get("/v1/export", params={"format": "acled"})
    assert (again.content, again.headers["etag"]) == (response.content, response.headers["etag"])
    csv_etag = (await client.get("/v1/export", params={"format": "csv"})).headers["etag"]
    assert csv_etag != response.headers["etag"]
    early = await client.get("/v1/export", params={"format": "acled", "known_at": "position:1"})
    assert len(_frame(early.content)) == 1


async def test_the_acled_export_imports_again_as_all_duplicates(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Import the fixture, export it as ACLED, import the export into the same database:
    every event is a duplicate (the same ids and content), none refused, nothing new."""
    await _import(client, FIXTURE.read_bytes())
    exported = await client.get("/v1/export", params={"format": "acled"})
    assert exported.status_code == 200, exported.text
    again = await _import(client, exported.content)
    assert (again["accepted"], again["duplicate"], again["rejected"]) == (0, EVENTS, 0)
    assert again["errors"] == []
    assert await stored_count(owner) == EVENTS


async def test_a_row_matched_by_name_alone_is_imported_and_flagged(client: Client) -> None:
    """A registered place without a point can only be matched by its name: the row is stored
    on it and listed in ``flags`` with its line, ACLED id and why."""
    place = {"id": "sy-dibsi-afnan", "name": "Dibsi Afnan", "lat": None, "lon": None}
    assert (await client.post("/v1/events", json=event_json(place=place))).status_code == 201
    record = json.loads(
        next(r for r in acled.read(FIXTURE.read_bytes()) if r.source_id == "SYR10002").raw
    )
    record.update(location="Dibsi Afnan", event_id_cnty="SYR20001")
    cells = ",".join(json.dumps(record[c], ensure_ascii=False) for c in acled.COLUMNS)
    body = f"{','.join(acled.COLUMNS)}\n{cells}\n".encode()
    result = await _import(client, body)
    assert (result["accepted"], result["rejected"], result["flagged"]) == (1, 0, 1)
    (flag,) = result["flags"]
    assert (flag["line"], flag["source_id"], flag["field"]) == (2, "SYR20001", "place")
    assert "by name alone" in flag["reason"]
    stored = (await client.get("/v1/places/sy-dibsi-afnan")).json()
    assert stored["version"] == 2


async def test_an_other_event_is_stored_listed_and_changes_nothing(client: Client) -> None:
    """The informational type ``other`` (a source's own code, e.g. PLOVER:PROTEST) is stored,
    filtered by type and shown with its code; the place's front is as before."""
    assert (await client.post("/v1/events", json=event_json())).status_code == 201
    before = (await client.get("/v1/places/sy-maskanah", params=AS_OF)).json()["segment"]
    other = event_json(type="other", code="PLOVER:PROTEST", side="isis", opponent=None)
    assert (await client.post("/v1/events", json=other)).status_code == 201
    listed = (await client.get("/v1/events", params={"type": "other"})).json()["events"]
    assert [e["event"]["code"] for e in listed] == ["PLOVER:PROTEST"]
    after = (await client.get("/v1/places/sy-maskanah", params=AS_OF)).json()["segment"]
    assert after == before
    missing = await client.post("/v1/events", json=event_json(type="other"))
    assert_problem(missing, 422, "code")


async def test_small_chunks_give_the_same_result(
    settings: Settings, admin_key: str, owner: asyncpg.Connection
) -> None:
    """Committed two events at a time (one chunk written while the next is prepared), the
    import stores the same events, keeps each row whole, and reports the same rows."""
    app = create_app(settings.with_(import_chunk=2))
    async with AsyncTestClient(app=app) as small:
        small.headers["authorization"] = f"Bearer {admin_key}"
        result = await _import(small, FIXTURE.read_bytes())
        again = await _import(small, FIXTURE.read_bytes())
    assert (result["accepted"], result["duplicate"], result["rejected"]) == (EVENTS, 0, 2)
    assert (again["accepted"], again["duplicate"], again["rejected"]) == (0, EVENTS, 2)
    commits = await owner.fetchval("SELECT count(DISTINCT commit_position) FROM events")
    assert commits > 3
    split = await owner.fetchval(
        "SELECT count(*) FROM (SELECT payload::jsonb ->> 'notes' AS row FROM events"
        " GROUP BY 1 HAVING count(DISTINCT commit_position) > 1) AS rows_split"
    )
    assert split == 0


async def test_the_acled_export_reads_state_forces_from_the_side_registry(client: Client) -> None:
    """A capture's ACLED sub-event type follows its side's kind in the side registry, under
    an alias too, and wins over the naming convention (``-government``); a side the
    registry does not know falls back to that convention."""
    sides = [
        {"side": "desert-hawks", "name": "Desert Hawks", "kind": "state_force",
         "colour": "#0072b2", "aliases": ["desert-hawks-brigade"]},
        {"side": "rebel-government", "name": "A rebel government", "kind":
         "non_state_armed_group", "colour": "#009e73", "aliases": []},
    ]  # fmt: skip
    registered = await client.post("/v1/sides", json={"sides": sides})
    assert registered.status_code == 201, registered.text
    for i, side in enumerate(("desert-hawks-brigade", "rebel-government", "syrian-government")):
        posted = await client.post(
            "/v1/events",
            json=event_json(side=side, place={"id": f"sy-kind-{i}", "name": f"Kind {i}"}),
        )
        assert posted.status_code == 201, posted.text
    response = await client.get("/v1/export", params={"format": "acled"})
    assert response.status_code == 200, response.text
    sub_events = {
        row["place_id"]: row["sub_event_type"] for _, row in _frame(response.content).iterrows()
    }
    assert sub_events == {
        "sy-kind-0": "Government regains territory",
        "sy-kind-1": "Non-state actor overtakes territory",
        "sy-kind-2": "Government regains territory",
    }
