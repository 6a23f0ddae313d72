"""Only the source that made an event may withdraw it (DESIGN section 3).

``retracts``, ``corrects`` and ``supersedes`` need the same source name **and** the key that
appended the original (or an admin key, in the name of the same source); anyone else gets a
403 problem naming the link, and nothing is stored. Another source may deny or confirm.
The attack of issue 13: the demo seed imported by one key, then another ingest key posting
a statement in South Front's name that retracts Maskanah's report of 2 June 2017, which
turned the town's controller on that day to none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from service.store.keys import KeyStore
from tests.api.conftest import assert_problem, stored_count
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]

SEED: Final = Path(__file__).resolve().parents[2] / "demo" / "seed.ndjson"
MASKANAH: Final = "sy-maskanah"
#: The seed's report that ISIS held Maskanah on 2 June 2017 (the attack's target).
HELD_BY_ISIS: Final = "0d42ab1a-65e6-5fb5-9638-039f171957f9"
WITHDRAWALS: Final = ("retracts", "corrects", "supersedes")


@pytest.fixture
async def keys(owner_pool: asyncpg.Pool) -> dict[str, dict[str, str]]:
    """Authorization headers of two ingest keys (the seed's and mallory's)."""
    store = KeyStore(owner_pool)
    made = {name: (await store.create(name, "ingest"))[1] for name in ("seed-bot", "mallory")}
    return {name: {"authorization": f"Bearer {key}"} for name, key in made.items()}


@pytest.fixture
async def seeded(client: Client, keys: dict[str, dict[str, str]]) -> Client:
    """The demo seed, imported as NDJSON by the ``seed-bot`` key."""
    headers = {"content-type": "application/x-ndjson", **keys["seed-bot"]}
    response = await client.post("/v1/events", content=SEED.read_bytes(), headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["rejected"] == 0
    return client


def withdrawal(relation: str, target: str, source: str = "South Front") -> dict[str, Any]:
    """A statement by ``source`` that withdraws ``target`` (at Maskanah)."""
    return event_json(
        type="statement",
        side=None,
        opponent=None,
        source={"name": source},
        relates_to=[{"event": target, "relation": relation}],
    )


async def controller_on(client: Client, day: str) -> str | None:
    """Maskanah's controller at the start of ``day``."""
    response = await client.get(f"/v1/places/{MASKANAH}", params={"valid_at": day})
    assert response.status_code == 200, response.text
    segment = response.json()["segment"]
    assert segment is not None
    controller: str | None = segment["controller"]
    return controller


@pytest.mark.parametrize("relation", WITHDRAWALS)
async def test_another_key_cannot_withdraw_the_seed_in_its_sources_name(
    seeded: Client, keys: dict[str, dict[str, str]], owner: asyncpg.Connection, relation: str
) -> None:
    """The attack: another ingest key, naming the same source, is refused with a 403 naming
    the link and the event; nothing is stored and Maskanah stays ISIS's on 2 June 2017."""
    before = await stored_count(owner)
    assert await controller_on(seeded, "2017-06-02") == "isis"
    with capture_logs() as logs:
        response = await seeded.post(
            "/v1/events", json=withdrawal(relation, HELD_BY_ISIS), headers=keys["mallory"]
        )
    body = assert_problem(response, 403, "relates_to[0].event")
    assert body["type"].endswith("/not-the-source")
    assert body["id"] == HELD_BY_ISIS
    assert "seed-bot" not in response.text  # who appended it is for auditors to see
    assert any(line["event"] == "authz_fail" for line in logs)
    assert await stored_count(owner) == before
    assert await controller_on(seeded, "2017-06-02") == "isis"


async def test_the_key_that_appended_it_may_retract_it(
    seeded: Client, keys: dict[str, dict[str, str]]
) -> None:
    """The same source from the key that appended the report may retract it: with no other
    report on 2 June, Maskanah then has no controller that day."""
    response = await seeded.post(
        "/v1/events", json=withdrawal("retracts", HELD_BY_ISIS), headers=keys["seed-bot"]
    )
    assert response.status_code == 201, response.text
    assert await controller_on(seeded, "2017-06-02") is None


async def test_an_admin_may_withdraw_in_the_sources_name_only(seeded: Client) -> None:
    """An admin key (the client's) may retract another key's event in the name of the same
    source; in another source's name it is refused like anyone (the projection would ignore
    such a retraction)."""
    foreign = await seeded.post("/v1/events", json=withdrawal("retracts", HELD_BY_ISIS, "SOHR"))
    body = assert_problem(foreign, 403, "relates_to[0].event")
    assert "another source" in body["detail"]
    response = await seeded.post("/v1/events", json=withdrawal("retracts", HELD_BY_ISIS))
    assert response.status_code == 201, response.text
    assert await controller_on(seeded, "2017-06-02") is None


@pytest.mark.parametrize("relation", ["denies", "confirms"])
async def test_another_key_and_source_may_deny_or_confirm(
    seeded: Client, keys: dict[str, dict[str, str]], relation: str
) -> None:
    """Denying and confirming stay open to every source and key."""
    statement = withdrawal(relation, HELD_BY_ISIS, "SOHR")
    response = await seeded.post("/v1/events", json=statement, headers=keys["mallory"])
    assert response.status_code == 201, response.text


async def test_a_batch_withdraws_its_own_event_but_not_anothers(
    seeded: Client, keys: dict[str, dict[str, str]], owner: asyncpg.Connection
) -> None:
    """A batch may retract an event appended earlier in the same batch (the same key sent
    it); a batch that also retracts the seed's event is refused whole, naming the link."""
    mine = event_json()
    own = {"events": [mine, withdrawal("retracts", mine["id"])]}
    response = await seeded.post("/v1/events", json=own, headers=keys["mallory"])
    assert response.status_code == 201, response.text
    before = await stored_count(owner)
    attack = {"events": [event_json(), withdrawal("supersedes", HELD_BY_ISIS)]}
    refused = await seeded.post("/v1/events", json=attack, headers=keys["mallory"])
    assert_problem(refused, 403, "events[1].relates_to[0].event")
    assert await stored_count(owner) == before


async def test_an_ndjson_import_rejects_the_foreign_withdrawal_by_line(
    seeded: Client, keys: dict[str, dict[str, str]], owner: asyncpg.Connection
) -> None:
    """An NDJSON import goes on past a line that withdraws another key's event: that line
    is rejected with its number and the reason, the others are stored (a line withdrawing
    an event of an earlier line of the same import included)."""
    mine = event_json()
    lines = [
        event_json(),
        withdrawal("corrects", HELD_BY_ISIS),
        mine,
        withdrawal("retracts", mine["id"]),
    ]
    before = await stored_count(owner)
    headers = {"content-type": "application/x-ndjson", **keys["mallory"]}
    body = "".join(json.dumps(line) + "\n" for line in lines)
    response = await seeded.post("/v1/events", content=body.encode(), headers=headers)
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (3, 1)
    (error,) = result["errors"]
    assert (error["line"], error["field"]) == (2, "relates_to[0].event")
    assert HELD_BY_ISIS in error["reason"]
    assert "API key" in error["reason"]
    assert await stored_count(owner) == before + 3
    assert await controller_on(seeded, "2017-06-02") == "isis"
