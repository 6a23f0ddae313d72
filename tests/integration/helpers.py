"""Helpers of the integration tests: requests built from wire JSON, and looks behind the store.

Events go through the same path a POST takes: wire JSON, ``event_decoder``, ``prepare_event``.
The checks of the stored log read the tables as the owner, independently of the store's own
read queries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Final, TypeAlias

import asyncpg
import msgspec
import rfc8785

from contracts.events import Expectation, event_decoder
from contracts.responses import Receipt
from service.domain.append import AppendRequest
from service.domain.errors import FrontlineError
from service.domain.records import PreparedEvent, prepare_event
from service.domain.time import utc_text
from service.store.events import EventStore
from tests.payloads import event_json

ZERO_HASH: Final = bytes(32)

#: A connection as the asyncpg stubs type it (a string: the class is not generic at run time).
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record]"


def prepared(event: dict[str, Any] | None = None) -> PreparedEvent:
    """An event as the API prepares it, from wire JSON (default: ``event_json()``)."""
    body = msgspec.json.encode(event if event is not None else event_json())
    return prepare_event(event_decoder.decode(body))


def expectation(place: str, version: int | str) -> Expectation:
    """An ``expect`` entry as a client would send it."""
    return msgspec.convert({"place": place, "version": version}, Expectation)


def request(
    *events: dict[str, Any],
    expect: Sequence[tuple[str, int | str]] = (),
    submitter: str | None = None,
    admin: bool = False,
) -> AppendRequest:
    """One POST: the given wire events, as one atomic batch, with its preconditions, sent by
    the key named ``submitter`` (an admin's when ``admin``)."""
    return AppendRequest(
        events=tuple(prepared(e) for e in events),
        expect=tuple(expectation(place, version) for place, version in expect),
        submitter=submitter,
        admin=admin,
    )


async def append_ok(
    store: EventStore,
    *events: dict[str, Any],
    expect: Sequence[tuple[str, int | str]] = (),
    submitter: str | None = None,
    admin: bool = False,
) -> list[Receipt]:
    """Append one request alone; its receipts (the test fails on an error)."""
    (outcome,) = await store.append_group(
        [request(*events, expect=expect, submitter=submitter, admin=admin)]
    )
    assert not isinstance(outcome, FrontlineError), f"append failed: {outcome!r}"
    return outcome


async def append_error(
    store: EventStore,
    *events: dict[str, Any],
    expect: Sequence[tuple[str, int | str]] = (),
    submitter: str | None = None,
    admin: bool = False,
) -> FrontlineError:
    """Append one request alone that must fail; its error."""
    (outcome,) = await store.append_group(
        [request(*events, expect=expect, submitter=submitter, admin=admin)]
    )
    assert isinstance(outcome, FrontlineError), f"append succeeded: {outcome!r}"
    return outcome


async def event_rows(conn: Conn) -> list[asyncpg.Record]:
    """Every stored event row, in position order, read directly from the table."""
    return await conn.fetch(
        """
        SELECT position, id, place_id, place_version, type, source_key, recorded_at,
               commit_position, submitter, payload, payload_digest, record, prev_hash, hash
        FROM events ORDER BY position
        """
    )


async def log_state(conn: Conn) -> tuple[int, int, int, list[asyncpg.Record]]:
    """What an append that failed must leave untouched: event count, link count, head, places."""
    events = await conn.fetchval("SELECT count(*) FROM events")
    links = await conn.fetchval("SELECT count(*) FROM event_links")
    head = await conn.fetchval("SELECT position FROM log_head")
    places = await conn.fetch("SELECT id, version, aliases, last_position FROM places ORDER BY id")
    return int(events), int(links), int(head), list(places)


def check_chain(rows: Sequence[asyncpg.Record]) -> None:
    """Recompute the chain as a verifier would (DESIGN 6); fail naming the first bad position."""
    prev = ZERO_HASH
    for expected_position, row in enumerate(rows, start=1):
        where = f"position {row['position']}"
        assert row["position"] == expected_position, f"{where}: positions are not dense"
        record_bytes = row["record"].encode()
        payload_bytes = row["payload"].encode()
        assert bytes(row["prev_hash"]) == prev, f"{where}: prev_hash is not the previous hash"
        assert bytes(row["hash"]) == hashlib.sha256(prev + record_bytes).digest(), (
            f"{where}: hash is not sha256(prev_hash || record)"
        )
        digest = hashlib.sha256(payload_bytes).digest()
        assert bytes(row["payload_digest"]) == digest, f"{where}: payload_digest is wrong"
        record = json.loads(record_bytes)
        assert rfc8785.dumps(record) == record_bytes, f"{where}: record is not RFC 8785 JSON"
        assert rfc8785.dumps(json.loads(payload_bytes)) == payload_bytes, (
            f"{where}: payload is not RFC 8785 JSON"
        )
        assert record == {
            "commit_position": row["commit_position"],
            "id": str(row["id"]),
            "payload_sha256": digest.hex(),
            "place": row["place_id"],
            "place_version": row["place_version"],
            "position": row["position"],
            "recorded_at": utc_text(row["recorded_at"]),
            "submitter": row["submitter"],
            "type": row["type"],
            "v": 1,
        }, f"{where}: the record does not match the columns"
        prev = bytes(row["hash"])
