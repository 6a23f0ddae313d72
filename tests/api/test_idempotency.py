"""``Idempotency-Key`` on POST /v1/events: a retry of events without ids stores nothing twice.

Events without an ``id`` get a fresh random id each time they are posted, so a client that
retries after a lost answer stores them twice. With an ``Idempotency-Key`` header (IETF
draft-ietf-httpapi-idempotency-key-header), each event without an id gets the id
``contracts.idempotency.keyed_event_id(key, index)``: a retry gets the original receipts,
other content under the same key is a 422, as for ids.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Final

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from contracts.idempotency import keyed_event_id
from tests.api.conftest import assert_problem, stored_count
from tests.payloads import at_place, event_json

Client = AsyncTestClient[Litestar]
KEY: Final = "8e03978e-40d5-43e8-bc93-6894a57f9324"
HEADER: Final = {"idempotency-key": f'"{KEY}"'}


def _no_id(**changes: Any) -> dict[str, Any]:
    return event_json(id=None, **changes)


async def test_without_a_key_the_same_body_is_stored_twice(
    client: Client, owner: asyncpg.Connection
) -> None:
    """The documented hazard: an event without ``id`` posted twice is two events."""
    body = _no_id()
    first = await client.post("/v1/events", json=body)
    second = await client.post("/v1/events", json=body)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["receipts"][0]["id"] != second.json()["receipts"][0]["id"]
    assert await stored_count(owner) == 2


async def test_a_retry_with_the_key_gets_the_original_receipt(
    client: Client, owner: asyncpg.Connection
) -> None:
    """One event without an id, posted twice with the same key: 201 then 200 with the same
    receipt marked duplicate; stored once, under the id the contract derives (index 0)."""
    body = _no_id()
    first = await client.post("/v1/events", json=body, headers=HEADER)
    again = await client.post("/v1/events", json=body, headers=HEADER)
    assert (first.status_code, again.status_code) == (201, 200)
    (receipt,) = first.json()["receipts"]
    assert receipt["id"] == str(keyed_event_id(KEY, 0))
    assert again.json()["receipts"] == [{**receipt, "duplicate": True}]
    assert await stored_count(owner) == 1


async def test_a_batch_gets_one_id_per_index_and_keeps_ids_it_was_given(
    client: Client, owner: asyncpg.Connection
) -> None:
    """In a batch, event i without an id gets keyed_event_id(key, i); an event with its own
    id keeps it. A retry of the batch gets every original receipt."""
    own = str(uuid.uuid4())
    events = [_no_id(), at_place("sy-raqqa", id=own), at_place("sy-tabqa", id=None)]
    first = await client.post("/v1/events", json={"events": events}, headers=HEADER)
    assert first.status_code == 201, first.text
    ids = [r["id"] for r in first.json()["receipts"]]
    assert ids == [str(keyed_event_id(KEY, 0)), own, str(keyed_event_id(KEY, 2))]
    again = await client.post("/v1/events", json={"events": events}, headers=HEADER)
    assert again.status_code == 200
    assert [r["id"] for r in again.json()["receipts"]] == ids
    assert await stored_count(owner) == 3


async def test_the_key_with_other_content_is_a_422(
    client: Client, owner: asyncpg.Connection
) -> None:
    """The same key with another body is a 422 naming the id it derives, as for an id reused
    with other content; nothing more is stored."""
    assert (await client.post("/v1/events", json=_no_id(), headers=HEADER)).status_code == 201
    other = _no_id(quote="a different report")
    problem = assert_problem(await client.post("/v1/events", json=other, headers=HEADER), 422)
    assert problem["type"].endswith("/id-conflict")
    assert problem["id"] == str(keyed_event_id(KEY, 0))
    assert await stored_count(owner) == 1


async def test_an_ndjson_import_retried_with_the_key_stores_nothing_new(
    client: Client, owner: asyncpg.Connection
) -> None:
    """An NDJSON import with a key: the line n (blank lines counted) gets
    keyed_event_id(key, n - 1). Posting the file again with the key (as after a lost answer
    or a failed import) gives duplicates only."""
    lines = [_no_id(), at_place("sy-raqqa", id=None)]
    body = json.dumps(lines[0]).encode() + b"\n\n" + json.dumps(lines[1]).encode() + b"\n"
    headers = {**HEADER, "content-type": "application/x-ndjson"}
    first = (await client.post("/v1/events", content=body, headers=headers)).json()
    assert (first["accepted"], first["duplicate"]) == (2, 0)
    again = (await client.post("/v1/events", content=body, headers=headers)).json()
    assert (again["accepted"], again["duplicate"]) == (0, 2)
    stored = {r["id"] for r in await owner.fetch("SELECT id FROM events")}
    assert stored == {keyed_event_id(KEY, 0), keyed_event_id(KEY, 2)}


async def test_a_bare_key_is_the_same_key(client: Client, owner: asyncpg.Connection) -> None:
    """Many clients send the key unquoted (``Idempotency-Key: abc``): it names the same key
    as the Structured Field String ``"abc"``."""
    body = _no_id()
    first = await client.post("/v1/events", json=body, headers={"idempotency-key": KEY})
    again = await client.post("/v1/events", json=body, headers=HEADER)
    assert (first.status_code, again.status_code) == (201, 200)
    assert await stored_count(owner) == 1


@pytest.mark.parametrize(
    "value",
    ['""', '"unterminated', '"bad \\escape"', "a\tb", "x" * 256, '"' + "x" * 256 + '"', "é"],
)
async def test_a_malformed_key_is_a_422_naming_the_header(
    client: Client, owner: asyncpg.Connection, value: str
) -> None:
    """A key that is empty, longer than 255 characters, not printable ASCII, or a broken
    Structured Field String: 422 naming ``idempotency-key``; nothing stored."""
    response = await client.post(
        "/v1/events", json=_no_id(), headers={b"idempotency-key": value.encode("utf-8")}
    )
    assert_problem(response, 422, "idempotency-key")
    assert await stored_count(owner) == 0
