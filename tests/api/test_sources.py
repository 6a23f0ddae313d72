"""The source registry over HTTP (DESIGN section 8): grades, alignments and aliases per
source, with their history.

A POST may name a registered source without restating its grade; a re-grading applies from
its position on (to claims about earlier valid times too) and never rewrites what was said
or answered before it; an alias makes two names one source for rule 5; a rebuild gives the
rows the appends gave; bad edits are problems naming the field, and write nothing.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.conftest import assert_problem, stored_count
from tests.payloads import at_place, event_json

Client = AsyncTestClient[Litestar]

GOV: Final = "syrian-government"
JUNE_6: Final = "2017-06-06T12:00:00Z"
DAY_5: Final = {"start": "2017-06-05", "precision": "day"}


async def register(client: Client, *entries: dict[str, Any]) -> list[dict[str, Any]]:
    """POST one source entry, or several as a registry file; the receipts (201 expected)."""
    body: dict[str, Any] = entries[0] if len(entries) == 1 else {"sources": list(entries)}
    response = await client.post("/v1/sources", json=body)
    assert response.status_code == 201, response.text
    receipts: list[dict[str, Any]] = response.json()["receipts"]
    return receipts


async def post(client: Client, *events: dict[str, Any]) -> list[dict[str, Any]]:
    """Append events as one commit; the receipts."""
    body: dict[str, Any] = events[0] if len(events) == 1 else {"events": list(events)}
    response = await client.post("/v1/events", json=body)
    assert response.status_code == 201, response.text
    receipts: list[dict[str, Any]] = response.json()["receipts"]
    return receipts


async def segment(client: Client, place: str = "sy-maskanah", **params: str) -> dict[str, Any]:
    """The place's segment at June 6 (as known at ``known_at`` when given)."""
    response = await client.get("/v1/state", params={"valid_at": JUNE_6, **params})
    assert response.status_code == 200, response.text
    found: dict[str, dict[str, Any]] = {
        i["place"]["id"]: i["segment"] for i in response.json()["items"]
    }
    return found[place]


async def test_an_event_may_name_a_registered_source_without_its_grade(client: Client) -> None:
    """Reuters registered as B, neutral: an event naming only "Reuters" is scored as B
    (0.8 x 0.6 x 0.8 = 0.384, confidence 38), not as the contract's default F (24)."""
    await register(client, {"source": "Reuters", "reliability": "B"})
    await post(
        client, event_json(source={"name": "Reuters", "reliability": None, "alignment": None})
    )
    assert (await segment(client))["confidence"] == 38


async def test_a_regrading_applies_from_its_position_and_never_rewrites_before_it(
    client: Client,
) -> None:
    """South Front's capture (stated C, aligned with the government: 0.144, confidence 14);
    re-graded A and neutral, it scores 1.0 x 0.6 x 0.8 = 0.48 (48) in every answer known
    from the re-grading on, about earlier valid times too; as known before it, 14 still;
    the stored event still says C."""
    (receipt,) = await post(client, event_json())
    before = receipt["commit_position"]
    assert (await segment(client))["confidence"] == 14
    (graded,) = await register(client, {"source": "South Front", "reliability": "A"})
    assert graded["commit_position"] == before + 1
    now = await segment(client)
    assert (now["confidence"], now["basis"]) == (48, "assessed")
    assert (await segment(client, known_at=f"position:{before}"))["confidence"] == 14
    stored = (await client.get(f"/v1/events/{receipt['id']}")).json()["event"]["event"]
    assert stored["source"]["reliability"] == "C"
    listed = (await client.get("/v1/sources", params={"known_at": f"position:{before}"})).json()
    assert listed["sources"] == []
    entry = (await client.get(f"/v1/sources/{quote('south  FRONT')}")).json()
    assert (entry["source"], entry["key"], entry["reliability"]) == (
        "South Front",
        "southfront",
        "A",
    )


async def test_an_alias_makes_two_names_one_source(client: Client) -> None:
    """SOHR and "Syrian Observatory for Human Rights" both say the government holds the town:
    two sources, noisy-OR 1 - 0.616^2 = 0.62 (62); once one is the other's alias, one source
    counted once with its best claim (38), from the alias's position on."""
    sohr = {"name": "SOHR", "reliability": "B", "alignment": None}
    long_name = {
        "name": "Syrian Observatory for Human Rights",
        "reliability": "B",
        "alignment": None,
    }
    await post(client, event_json(type="control", opponent=None, source=sohr))
    await post(client, event_json(type="control", opponent=None, source=long_name))
    assert (await segment(client))["confidence"] == 62
    await register(
        client,
        {"source": "SOHR", "reliability": "B", "aliases": ["Syrian Observatory for Human Rights"]},
    )
    assert (await segment(client))["confidence"] == 38


async def test_a_rebuild_equals_the_incremental_rows_after_regradings(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Claims, a re-grading, an alias, a second re-grading in the same commit as a claim (a
    registry file and events cannot share a POST, so one after the other): the rows the
    appends wrote are those a rebuild writes, bit for bit."""
    await post(
        client,
        event_json(),
        at_place("sy-raqqa", side="isis", source={"name": "Amaq", "reliability": "D"}),
    )
    await register(client, {"source": "South Front", "reliability": "B"})
    await post(client, at_place("sy-raqqa", source={"name": "SF"}, occurred=DAY_5))
    await register(
        client,
        {"source": "South Front", "reliability": "D", "alignment": GOV, "aliases": ["SF"]},
        {"source": "Amaq", "reliability": "E", "alignment": "isis"},
    )
    query = (
        "SELECT place_id, valid_from, valid_to, known_from, known_to, controller, status,"
        " status_by, disputed, confidence, basis, body FROM segments"
        " ORDER BY place_id, known_from, valid_from"
    )
    rows = [tuple(r) for r in await owner.fetch(query)]
    assert any(r[4] is not None for r in rows)
    response = await client.post("/v1/admin/rebuild")
    assert response.status_code == 200, response.text
    assert [tuple(r) for r in await owner.fetch(query)] == rows


async def test_bad_source_entries_are_problems_naming_the_field(
    client: Client, owner: asyncpg.Connection
) -> None:
    """An alias another source holds (or its name) is a 409 naming the field (in a registry
    file, as ``sources[i]``); a bad grade,
    an alignment that is no slug, the source's own name as an alias (case and spacing
    aside), a source given twice in one file are 422; nothing is written; an unknown name is
    a 404."""
    await register(client, {"source": "SOHR", "aliases": ["Syrian Observatory"]})
    stored = await stored_count(owner)
    assert_problem(
        await client.post("/v1/sources", json={"source": "X", "aliases": ["syrian  observatory"]}),
        409,
        "aliases[0]",
    )
    assert_problem(
        await client.post("/v1/sources", json={"source": "Syrian Observatory"}), 409, "source"
    )
    in_a_file = await client.post(
        "/v1/sources",
        json={"sources": [{"source": "Y"}, {"source": "X", "aliases": ["Syrian Observatory"]}]},
    )
    assert_problem(in_a_file, 409, "sources[1].aliases[0]")
    for body, field in (
        ({"source": "X", "reliability": "G"}, "reliability"),
        ({"source": "X", "alignment": "Not A Slug"}, "alignment"),
        ({"source": "X", "aliases": [" x "]}, "aliases[0]"),
        ({"sources": [{"source": "A"}, {"source": "a"}]}, "sources[1].source"),
    ):
        assert_problem(await client.post("/v1/sources", json=body), 422, field)
    assert await stored_count(owner) == stored
    assert_problem(await client.get("/v1/sources/nobody"), 404, "source")
