"""Events shown with the registries' reading beside what they stated (issue 14): the log
export (NDJSON and CSV), the event reads and a place's events and history give each event's
canonical side, display name and registered source grade as known at the answer's position,
while the event itself stays as it was sent (the log is append-only).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Final

from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.usecases.export import LOG_COLUMNS
from tests.api.test_sides import GOVERNMENT, REUTERS, post, register
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]

GOV_NAME: Final = GOVERNMENT["name"]


async def export_lines(client: Client, **params: str) -> list[dict[str, Any]]:
    """The NDJSON export's lines (200 expected)."""
    response = await client.get("/v1/export", params=params)
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.content.splitlines()]


async def setup(client: Client) -> tuple[str, int, int]:
    """A capture stated under PLOVER's label before any registry entry, then the government
    registered with that label as alias and Reuters re-graded: the capture's id, the last
    position before the registry and the head."""
    (receipt,) = await post(
        client,
        event_json(side="syrian-arab-army", opponent="islamic-state", source=REUTERS),
    )
    await register(client, {**GOVERNMENT, "aliases": ["syrian-arab-army"]})
    response = await client.post(
        "/v1/sources",
        json={"source": "Reuters", "reliability": "A", "alignment": "neutral"},
    )
    assert response.status_code == 201, response.text
    head = response.json()["receipts"][0]["commit_position"]
    return receipt["id"], receipt["commit_position"], head


async def test_the_export_reads_each_event_as_known_at_its_position(client: Client) -> None:
    """Exported as known before the registry, the capture reads as stated (its label a side
    of its own, no display name, Reuters as the event graded it); as known at the head, as
    the government with its display name and Reuters' registered grade A. The stated
    ``event`` is the same bytes in both; registry events carry no reading."""
    event_id, before, head = await setup(client)
    (early,) = await export_lines(client, known_at=f"position:{before}")
    assert early["read_as"] == {
        "known_position": before,
        "side": "syrian-arab-army",
        "side_name": None,
        "opponent": "islamic-state",
        "opponent_name": None,
        "source": "Reuters",
        "reliability": "B",
        "alignment": "neutral",
        "registered_source": False,
    }
    late = await export_lines(client)
    capture = next(line for line in late if line["id"] == event_id)
    assert capture["read_as"]["known_position"] == head
    assert (capture["read_as"]["side"], capture["read_as"]["side_name"]) == (
        "syrian-government",
        GOV_NAME,
    )
    assert (capture["read_as"]["reliability"], capture["read_as"]["registered_source"]) == (
        "A",
        True,
    )
    assert capture["event"] == early["event"]
    assert capture["event"]["side"] == "syrian-arab-army"
    assert capture["event"]["source"]["reliability"] == "B"
    assert all("read_as" not in line for line in late if line["place"].startswith("side:"))


async def test_the_csv_export_adds_the_reading_columns_at_the_end(client: Client) -> None:
    """The log's CSV keeps its stated columns and adds the reading's at the end: the
    capture's ``side`` column is the label it stated, ``side_as_known`` and ``side_name``
    the government as known at the export's position; a registry row leaves them empty."""
    event_id, _, _ = await setup(client)
    response = await client.get("/v1/export", params={"format": "csv"})
    assert response.status_code == 200, response.text
    table = list(csv.reader(io.StringIO(response.text)))
    assert tuple(table[0]) == LOG_COLUMNS
    assert LOG_COLUMNS[-7:] == (
        "side_as_known",
        "side_name",
        "opponent_as_known",
        "opponent_name",
        "source_as_known",
        "reliability_as_known",
        "alignment_as_known",
    )
    rows = [dict(zip(LOG_COLUMNS, row, strict=True)) for row in table[1:]]
    capture = next(r for r in rows if r["id"] == event_id)
    assert (capture["side"], capture["reliability"]) == ("syrian-arab-army", "B")
    assert (capture["side_as_known"], capture["side_name"]) == ("syrian-government", GOV_NAME)
    assert (capture["reliability_as_known"], capture["source_as_known"]) == ("A", "Reuters")
    registry = next(r for r in rows if r["place"] == "side:syrian-government")
    assert registry["side_as_known"] == registry["side_name"] == ""


async def test_event_reads_show_the_reading_at_the_head(client: Client) -> None:
    """A page of the log, its NDJSON form and one event read at the head show the
    government as the capture's side, with the head as ``known_position``; the page's
    NDJSON lines are the export's."""
    event_id, _, head = await setup(client)
    page = (await client.get("/v1/events")).json()
    capture = next(e for e in page["events"] if e["id"] == event_id)
    assert capture["read_as"]["side"] == "syrian-government"
    assert capture["read_as"]["known_position"] == head
    one = (await client.get(f"/v1/events/{event_id}")).json()["event"]
    assert one["read_as"] == capture["read_as"]
    assert one["event"]["side"] == "syrian-arab-army"
    replay = await client.get("/v1/events", headers={"accept": "application/x-ndjson"})
    assert replay.content == (await client.get("/v1/export")).content


async def test_a_place_s_events_and_history_read_sides_as_known(client: Client) -> None:
    """A place's events as known before the alias read the label as itself, as known at the
    head as the government; its history lists each event's side as stated and as the
    registry known at the answer's position reads it, with the display name."""
    event_id, before, _ = await setup(client)
    early = (
        await client.get("/v1/places/sy-maskanah/events", params={"known_at": f"position:{before}"})
    ).json()
    assert [e["read_as"]["side"] for e in early["events"]] == ["syrian-arab-army"]
    now = (await client.get("/v1/places/sy-maskanah/events")).json()
    (event,) = now["events"]
    assert event["id"] == event_id
    assert (event["read_as"]["side"], event["read_as"]["side_name"]) == (
        "syrian-government",
        GOV_NAME,
    )
    history = (await client.get("/v1/places/sy-maskanah/history")).json()
    (listed,) = [e for entry in history["entries"] for e in entry["events"]]
    assert (listed["side"], listed["side_as_known"], listed["side_name"]) == (
        "syrian-arab-army",
        "syrian-government",
        GOV_NAME,
    )


async def test_an_unregistered_side_reads_as_itself(client: Client) -> None:
    """With no registry at all, every reading is what the event stated: the side and
    opponent as named, no display names, the source's stated grade, ``registered_source``
    false; the history's ``side_as_known`` is the side."""
    await post(client, event_json(source=REUTERS))
    (line,) = await export_lines(client)
    stated = line["event"]
    assert line["read_as"] == {
        "known_position": 1,
        "side": stated["side"],
        "side_name": None,
        "opponent": stated["opponent"],
        "opponent_name": None,
        "source": "Reuters",
        "reliability": "B",
        "alignment": "neutral",
        "registered_source": False,
    }
    history = (await client.get("/v1/places/sy-maskanah/history")).json()
    (listed,) = history["entries"][0]["events"]
    assert (listed["side_as_known"], listed["side_name"]) == (stated["side"], None)
