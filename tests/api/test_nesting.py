"""JSON nested deeper than any event: a 400 or a rejected line naming it, never a 500.

Parsers recurse once per level of nesting, so a body of a thousand ``[`` exhausted the stack
(a RecursionError, answered 500) before any check of its shape; so did a line nested deeply
inside an object whose ``type`` comes last (msgspec skips values looking for the tag).
Frontline measures the depth first (``service.domain.validation.MAX_DEPTH``).
"""

from __future__ import annotations

import json
from typing import Final

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.domain.validation import MAX_DEPTH
from tests.api.conftest import assert_problem, stored_count
from tests.payloads import at_place, event_json

Client = AsyncTestClient[Litestar]
JSON: Final = {"content-type": "application/json"}
NDJSON: Final = {"content-type": "application/x-ndjson"}

DEEP: Final = 1000
ARRAYS: Final = b"[" * DEEP + b"]" * DEEP
OBJECTS: Final = b'{"a":' * DEEP + b"1" + b"}" * DEEP

#: Bodies whose nesting reaches a parser before any check could refuse their shape.
HOSTILE: Final = {
    "arrays": ARRAYS,
    "objects": OBJECTS,
    "unclosed": b"[" * DEEP,
    "unknown member first": b'{"zzz":' + ARRAYS + b',"type":"capture"}',
    "before the tag": b'{"place":{"id":"x"},"notes":' + ARRAYS + b',"type":"capture"}',
    "as the batch": b'{"events":' + ARRAYS + b"}",
    "inside the batch": b'{"events":[' + ARRAYS + b"]}",
    "before the batch": b'{"expect":' + ARRAYS + b',"events":[{}]}',
    "in a batched event": b'{"events":[{"type":"capture","notes":' + OBJECTS + b"}]}",
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
async def test_a_body_nested_too_deeply_is_a_400_naming_it(
    client: Client, owner: asyncpg.Connection, body: bytes
) -> None:
    """POST /v1/events with JSON nested a thousand deep, wherever the nesting sits: 400 with
    the problem type ``nested-too-deeply`` naming the body and the limit; nothing stored."""
    response = await client.post("/v1/events", content=body, headers=JSON)
    problem = assert_problem(response, 400, "body")
    assert problem["type"].endswith("/nested-too-deeply")
    assert f"more than {MAX_DEPTH} deep" in problem["detail"]
    assert await stored_count(owner) == 0


async def test_nesting_inside_strings_and_at_the_contract_depth_is_fine(client: Client) -> None:
    """Brackets inside strings are text, not nesting; a batch whose events carry aliases
    (the contract's deepest shape) is stored."""
    bracketed = "[" * 200 + '{"\\"' + "]" * 50
    event = event_json(quote=bracketed, place={"aliases": ["A", "B"]})
    response = await client.post("/v1/events", json={"events": [event, at_place("sy-b")]})
    assert response.status_code == 201, response.text


async def test_the_limit_is_exact(client: Client) -> None:
    """An unknown member nested exactly MAX_DEPTH deep (with the event's own object) gets
    the contract's 422 for an unknown field; one level more is the 400."""
    inner = MAX_DEPTH - 1
    at_limit = b'{"zzz":' + b"[" * inner + b"]" * inner + b',"type":"capture"}'
    over = b'{"zzz":' + b"[" * (inner + 1) + b"]" * (inner + 1) + b',"type":"capture"}'
    assert_problem(await client.post("/v1/events", content=at_limit, headers=JSON), 422)
    assert_problem(await client.post("/v1/events", content=over, headers=JSON), 400, "body")


async def test_a_line_nested_too_deeply_is_a_rejected_line(
    client: Client, owner: asyncpg.Connection
) -> None:
    """In an NDJSON import, each line nested too deeply is rejected by its number, naming the
    nesting; the good lines around it are stored."""
    body = b"\n".join(
        [
            json.dumps(at_place("sy-a")).encode(),
            HOSTILE["before the tag"],
            ARRAYS,
            json.dumps(at_place("sy-b")).encode(),
            OBJECTS,
        ]
    )
    response = await client.post("/v1/events", content=body, headers=NDJSON)
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (2, 3)
    assert [e["line"] for e in result["errors"]] == [2, 3, 5]
    assert all("nests arrays or objects" in e["reason"] for e in result["errors"])
    assert await stored_count(owner) == 2


async def test_the_acled_export_survives_notes_nested_deeply(client: Client) -> None:
    """An event whose ``notes`` is JSON nested thousands deep (any client may write such
    notes) is exported as ACLED from its own fields: the export reads kept ACLED rows out of
    notes and must not recurse into this one."""
    notes = '{"a":' * 3000 + "1" + "}" * 3000
    stored = await client.post("/v1/events", json=event_json(notes=notes))
    assert stored.status_code == 201, stored.text
    response = await client.get("/v1/export", params={"format": "acled"})
    assert response.status_code == 200
    rows = response.content.decode().splitlines()
    assert len(rows) == 2
    assert rows[1].startswith("FL1,")
