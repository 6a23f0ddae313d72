"""The side registry over HTTP (DESIGN section 8): one side under every dataset's label.

A claim made under an alias counts for the canonical side in the projection, in ``side=``
filters and in the timelines; no side contests itself; the registry as known at K applies
to every answer known at K; a rebuild gives the rows the appends gave; bad edits are
problems naming the field, and write nothing.
"""

from __future__ import annotations

from typing import Any, Final

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.store.keys import KeyStore
from service.usecases.registry import default_registry
from tests.api.conftest import assert_problem, stored_count
from tests.payloads import at_place, event_json

Client = AsyncTestClient[Litestar]

GOV: Final = "syrian-government"
REUTERS: Final = {"name": "Reuters", "reliability": "B", "alignment": "neutral"}
SOHR: Final = {"name": "SOHR", "reliability": "B", "alignment": "neutral"}
DAY_1: Final = {"start": "2017-06-01", "precision": "day"}
DAY_3: Final = {"start": "2017-06-03", "precision": "day"}
DAY_5: Final = {"start": "2017-06-05", "precision": "day"}
JUNE_4: Final = "2017-06-04T12:00:00Z"
JUNE_6: Final = "2017-06-06T12:00:00Z"

GOVERNMENT: Final[dict[str, Any]] = {
    "side": GOV,
    "name": "Syrian government forces",
    "kind": "state_force",
    "colour": "#d55e00",
    "aliases": ["government-of-syria", "military-forces-of-syria-2000", "syrian-arab-army"],
}
ISIS: Final[dict[str, Any]] = {
    "side": "isis",
    "name": "Islamic State",
    "kind": "non_state_armed_group",
    "colour": "#000000",
    "aliases": ["is", "islamic-state", "islamic-state-syria"],
}
ROWS: Final = (
    "SELECT place_id, valid_from, valid_to, known_from, known_to, controller, status,"
    " status_by, disputed, confidence, basis, body FROM segments"
    " ORDER BY place_id, known_from, valid_from"
)


async def register(client: Client, *entries: dict[str, Any]) -> list[dict[str, Any]]:
    """POST one entry, or several as a registry file; the receipts (201 expected)."""
    body: dict[str, Any] = entries[0] if len(entries) == 1 else {"sides": list(entries)}
    response = await client.post("/v1/sides", json=body)
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


async def state(client: Client, **params: str) -> dict[str, dict[str, Any]]:
    """The front's segments by place id."""
    response = await client.get("/v1/state", params=params)
    assert response.status_code == 200, response.text
    return {item["place"]["id"]: item["segment"] for item in response.json()["items"]}


def labelled_reports() -> list[dict[str, Any]]:
    """Maskanah in June 2017 as three datasets label the government: ACLED's capture, a
    PLOVER-style control report under the Syrian Arab Army, and UCDP's clash between the
    Government of Syria and IS; the IS claim is Amaq's, under ACLED's label."""
    return [
        event_json(
            side="military-forces-of-syria-2000", opponent="islamic-state-syria", source=REUTERS
        ),
        event_json(type="control", side="syrian-arab-army", opponent=None, occurred=DAY_5),
        event_json(
            type="clash", side="government-of-syria", opponent="is", source=SOHR, occurred=DAY_5
        ),
    ]


async def test_one_side_under_every_dataset_label_in_the_projection_and_filters(
    client: Client,
) -> None:
    """With the registry loaded, claims under ACLED's, PLOVER's and UCDP's labels are one
    side: Maskanah is held by syrian-government (never disputed by its own aliases), the
    UCDP clash contests it by isis (the opponent), and ``side=`` finds it by the canonical
    id and by any alias, while ``side=isis``, which holds nothing, finds nothing."""
    await register(client, GOVERNMENT, ISIS)
    await post(client, *labelled_reports())
    segments = await state(client, valid_at="2017-06-05T12:00:00Z")  # during the clash
    segment = segments["sy-maskanah"]
    assert segment["controller"] == GOV
    assert segment["disputed"] is False
    assert (segment["status"], segment["status_by"]) == ("contested", "isis")
    for name in (GOV, "government-of-syria", "military-forces-of-syria-2000", "syrian-arab-army"):
        assert list(await state(client, valid_at=JUNE_6, side=name)) == ["sy-maskanah"], name
    assert await state(client, valid_at=JUNE_6, side="isis") == {}
    assert await state(client, valid_at=JUNE_6, side="is") == {}


async def test_no_side_contests_itself(client: Client) -> None:
    """A clash labelled with two names of the government (UCDP's side A and PLOVER's target)
    in a government-held town does not make the government contest its own town: the town
    stays controlled, undisputed."""
    await register(client, GOVERNMENT)
    await post(
        client,
        event_json(type="control", opponent=None, source=REUTERS, occurred=DAY_1),
        event_json(
            type="clash",
            side="government-of-syria",
            opponent="syrian-arab-army",
            source=SOHR,
            occurred=DAY_3,
        ),
    )
    segment = (await state(client, valid_at="2017-06-03T12:00:00Z"))["sy-maskanah"]
    assert (segment["controller"], segment["status"], segment["status_by"]) == (
        GOV,
        "controlled",
        None,
    )
    assert segment["disputed"] is False


async def test_the_registry_as_known_at_k_before_and_after_an_alias(client: Client) -> None:
    """Claims made before the alias existed: as known before it, UCDP's label is a side of
    its own (Maskanah disputed between it and the government); as known from the alias's
    position on, one side, even about valid times before the alias. GET /v1/sides and the
    ``side=`` filter follow the same positions."""
    await register(client, {**GOVERNMENT, "aliases": []})
    receipts = await post(
        client,
        event_json(source=REUTERS),
        event_json(
            type="control", side="government-of-syria", opponent=None, source=SOHR, occurred=DAY_5
        ),
    )
    before = receipts[-1]["commit_position"]
    old = (await state(client, valid_at=JUNE_6))["sy-maskanah"]
    assert old["disputed"] is True

    (alias,) = await register(client, {**GOVERNMENT, "aliases": ["government-of-syria"]})
    after = alias["commit_position"]
    assert after == before + 1

    now = (await state(client, valid_at=JUNE_6))["sy-maskanah"]
    assert (now["controller"], now["disputed"]) == (GOV, False)
    as_before = await state(client, valid_at=JUNE_6, known_at=f"position:{before}")
    assert as_before["sy-maskanah"] == old
    assert (
        await state(
            client, valid_at=JUNE_6, known_at=f"position:{before}", side="government-of-syria"
        )
        == {}
    )  # as known then, the label held nothing: the government held the town
    assert list(await state(client, valid_at=JUNE_6, side="government-of-syria")) == ["sy-maskanah"]

    then = (await client.get("/v1/sides", params={"known_at": f"position:{before}"})).json()
    assert [(s["side"], s["aliases"], s["version"]) for s in then["sides"]] == [(GOV, [], 1)]
    latest = (await client.get("/v1/sides")).json()
    assert [(s["side"], s["aliases"], s["version"]) for s in latest["sides"]] == [
        (GOV, ["government-of-syria"], 2)
    ]
    assert latest["sides"][0]["submitter"] == "test-admin"
    by_alias = (await client.get("/v1/sides/government-of-syria")).json()
    assert by_alias["side"] == GOV


async def test_a_rebuild_equals_the_incremental_rows_after_aliases(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Claims under labels, aliases added, one removed and a place touched in the same
    commit as a registry edit: the rows the appends wrote (known ranges included) are the
    rows a rebuild writes from the log, bit for bit."""
    await post(client, *labelled_reports())
    await post(
        client,
        at_place("sy-raqqa", side="is", opponent="syrian-arab-army", source=REUTERS),
        at_place("sy-tabqa", type="control", side="isis", opponent=None, occurred=DAY_1),
    )
    await register(client, GOVERNMENT)
    await register(client, ISIS)
    await post(client, at_place("sy-tabqa", side="government-of-syria", source=SOHR))
    await register(client, {**ISIS, "aliases": ["islamic-state-syria"]})  # 'is' removed
    await post(client, at_place("sy-deir", type="control", side="is", opponent=None))
    rows = [tuple(r) for r in await owner.fetch(ROWS)]
    assert any(r[4] is not None for r in rows)  # aliases replaced rows: a past to rebuild
    response = await client.post("/v1/admin/rebuild")
    assert response.status_code == 200, response.text
    assert [tuple(r) for r in await owner.fetch(ROWS)] == rows


async def test_an_alias_refolds_the_places_with_claims_under_it_in_its_commit(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Adding an alias changes the rows of the places whose claims use it at the alias's
    own position, and leaves every other place's rows as they were."""
    await post(
        client,
        at_place("sy-a", side="government-of-syria", opponent=None, source=REUTERS),
        at_place("sy-b", side="isis", opponent=None, source=REUTERS),
    )
    (receipt,) = await register(client, GOVERNMENT)
    position = receipt["commit_position"]
    changed = await owner.fetch(
        "SELECT DISTINCT place_id FROM segments WHERE known_from = $1 OR known_to = $1", position
    )
    assert [r["place_id"] for r in changed] == ["sy-a"]
    controllers = await state(client, valid_at=JUNE_6)
    assert controllers["sy-a"]["controller"] == GOV
    assert controllers["sy-b"]["controller"] == "isis"


async def test_an_alias_of_another_side_is_a_409_naming_it_and_writes_nothing(
    client: Client, owner: asyncpg.Connection
) -> None:
    """An alias another side holds, or another side's id as an alias, or a side id that is
    another side's alias: 409 naming the field; nothing is written."""
    await register(client, GOVERNMENT, ISIS)
    stored = await stored_count(owner)
    taken = await client.post(
        "/v1/sides", json={"side": "sdf", "name": "SDF", "aliases": ["sdf-x", "is"]}
    )
    body = assert_problem(taken, 409, "aliases[1]")
    assert "isis" in body["detail"]
    assert_problem(
        await client.post("/v1/sides", json={"side": "sdf", "name": "SDF", "aliases": [GOV]}),
        409,
        "aliases[0]",
    )
    assert_problem(await client.post("/v1/sides", json={"side": "is", "name": "IS"}), 409, "side")
    in_a_file = await client.post(
        "/v1/sides",
        json={
            "sides": [{"side": "sdf", "name": "SDF"}, {"side": "x", "name": "X", "aliases": ["is"]}]
        },
    )
    assert_problem(in_a_file, 409, "sides[1].aliases[0]")
    assert await stored_count(owner) == stored


async def test_bad_entries_are_422_problems_naming_the_field(
    client: Client, owner: asyncpg.Connection
) -> None:
    """A bad colour, an unknown kind, a reserved or repeated alias, the side's own id as an
    alias, an unknown field, a side given twice in one file: 422 naming the field."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({"side": "sdf", "name": "SDF", "colour": "red"}, "colour"),
        ({"side": "sdf", "name": "SDF", "colour": "#FF0000"}, "colour"),
        ({"side": "sdf", "name": "SDF", "kind": "army"}, "kind"),
        ({"side": "sdf", "name": "SDF", "aliases": ["neutral"]}, "aliases[0]"),
        ({"side": "neutral", "name": "Neutral"}, "side"),
        ({"side": "sdf", "name": "SDF", "aliases": ["a", "a"]}, "aliases[1]"),
        ({"side": "sdf", "name": "SDF", "aliases": ["sdf"]}, "aliases[0]"),
        ({"side": "sdf", "name": "SDF", "position": 3}, "position"),
        ({"side": "Bad Id", "name": "SDF"}, "side"),
        ({"sides": [{"side": "sdf", "name": "A"}, {"side": "sdf", "name": "B"}]}, "sides[1].side"),
    ]
    for body, field in cases:
        assert_problem(await client.post("/v1/sides", json=body), 422, field)
    assert await stored_count(owner) == 0


async def test_expect_guards_a_side_stream(client: Client) -> None:
    """``expect`` on a side's registry stream: ``none`` registers it once, a stale version
    is a 409 with the current version, the right one goes through."""
    await register(client, {**GOVERNMENT, "expect": "none"})
    again = await client.post("/v1/sides", json={**GOVERNMENT, "expect": "none"})
    body = assert_problem(again, 409, "expect")
    assert body["actual"] == 1
    assert_problem(await client.post("/v1/sides", json={**GOVERNMENT, "expect": 0}), 409)
    await register(client, {**GOVERNMENT, "name": "Syrian Arab Army", "expect": 1})
    assert (await client.get(f"/v1/sides/{GOV}")).json()["name"] == "Syrian Arab Army"


async def test_an_unknown_side_is_a_404(client: Client) -> None:
    """GET /v1/sides/{side} of a name no side registers is a 404 problem."""
    assert_problem(await client.get("/v1/sides/nobody"), 404, "side")


async def test_registry_edits_need_an_editor_or_admin_key(
    client: Client, owner_pool: asyncpg.Pool
) -> None:
    """An ingest key may not edit the registry (403); an editor key may, and its name is
    the entry's submitter; a read key reads it."""
    keys = KeyStore(owner_pool)
    _, ingest = await keys.create("ingest-key", "ingest")
    _, editor = await keys.create("editor-key", "editor")
    _, reader = await keys.create("read-key", "read")
    refused = await client.post(
        "/v1/sides", json=GOVERNMENT, headers={"authorization": f"Bearer {ingest}"}
    )
    assert_problem(refused, 403)
    done = await client.post(
        "/v1/sides", json=GOVERNMENT, headers={"authorization": f"Bearer {editor}"}
    )
    assert done.status_code == 201, done.text
    read = await client.get("/v1/sides", headers={"authorization": f"Bearer {reader}"})
    assert read.status_code == 200, read.text
    assert read.json()["sides"][0]["submitter"] == "editor-key"
    events = await client.get("/v1/events", params={"type": "side_registered"})
    assert [e["place"] for e in events.json()["events"]] == [f"side:{GOV}"]


async def test_the_default_registry_maps_every_fixture_label(client: Client) -> None:
    """The default registry (demo/sides.json) loads, and names the government, IS, the
    SDF, the coalition and the opposition under the labels the ACLED, UCDP GED and PLOVER
    fixtures use."""
    response = await client.post("/v1/sides", content=default_registry())
    assert response.status_code == 201, response.text
    sides = {s["side"]: s for s in (await client.get("/v1/sides")).json()["sides"]}
    assert {GOV, "isis", "sdf", "us-coalition", "syrian-opposition"} <= set(sides)
    labels = {
        "military-forces-of-syria-2000": GOV,
        "government-of-syria": GOV,
        "syrian-arab-army": GOV,
        "is": "isis",
        "islamic-state-syria": "isis",
        "islamic-state": "isis",
        "sdf-syrian-democratic-forces": "sdf",
        "military-forces-of-united-states-2017-2021": "us-coalition",
        "us-led-coalition": "us-coalition",
        "syrian-insurgents": "syrian-opposition",
    }
    for label, side in labels.items():
        assert (await client.get(f"/v1/sides/{label}")).json()["side"] == side, label
    assert sides[GOV]["kind"] == "state_force"
