"""A lone surrogate escape ("\\ud800") in a string field: JSON can write it, no UTF-8 text can
hold it. A single POST, a batch and an NDJSON import answer with a 422 problem or a rejected
line naming the field holding it, never a 500; the good lines still import."""

from __future__ import annotations

import json

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.conftest import assert_problem, stored_count
from tests.payloads import at_place, event_json

Client = AsyncTestClient[Litestar]
NDJSON = {"content-type": "application/x-ndjson"}


def _with(event: dict[str, object], field: str, escape: str) -> bytes:
    """The event as JSON, its ``field`` (dotted) holding ``escape`` in the JSON text."""
    marker = "SURROGATE-HERE"
    target: dict[str, object] = event
    *parents, last = field.split(".")
    for name in parents:
        target = target[name]  # type: ignore[assignment]
    target[last] = f"a{marker}b"
    text = json.dumps(event)
    return text.replace(marker, escape).encode()


@pytest.mark.parametrize(
    ("field", "escape"),
    [
        ("actor", "\\ud800"),
        ("quote", "\\udfff"),
        ("place.name", "\\ud83d"),
        ("source.name", "\\udc00\\ud800"),
    ],
)
async def test_a_single_post_is_a_422_naming_the_field(
    client: Client, owner: asyncpg.Connection, field: str, escape: str
) -> None:
    """A lone surrogate escape in a string field of a single event is a 422 naming that field
    and saying surrogate, and nothing is stored."""
    response = await client.post(
        "/v1/events",
        content=_with(event_json(), field, escape),
        headers={"content-type": "application/json"},
    )
    problem = assert_problem(response, 422, field)
    assert "surrogate" in problem["detail"]
    assert await stored_count(owner) == 0


async def test_a_batch_names_the_event_and_field(client: Client) -> None:
    """In a batch, the 422 names the event's index and field (events[1].actor)."""
    marker = "SURROGATE-HERE"
    body = json.dumps({"events": [at_place("sy-a"), event_json(actor=marker)]})
    response = await client.post(
        "/v1/events",
        content=body.replace(marker, "\\ud800").encode(),
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 422, "events[1].actor")


async def test_a_surrogate_in_a_member_name_is_a_422(client: Client) -> None:
    """A lone surrogate in an object's member name, where no field can be named, is a 422 naming
    the body."""
    body = json.dumps(event_json()).replace('"actor"', '"ac\\ud800tor"', 1).encode()
    response = await client.post(
        "/v1/events", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "body")


async def test_a_paired_surrogate_escape_is_text_and_is_stored(client: Client) -> None:
    """A whole pair ("\\ud83d\\ude00", an emoji) is text: stored as such."""
    response = await client.post(
        "/v1/events",
        content=_with(event_json(), "actor", "\\ud83d\\ude00"),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    stored = (await client.get(f"/v1/events/{response.json()['receipts'][0]['id']}")).json()
    assert stored["event"]["event"]["actor"] == "a\U0001f600b"


async def test_an_ndjson_line_is_rejected_naming_the_field_and_the_rest_imports(
    client: Client, owner: asyncpg.Connection
) -> None:
    """In an NDJSON import the lines holding a lone surrogate are rejected with their line and
    field, and the three good lines around them are stored."""
    good = [at_place(f"sy-place-{i}") for i in range(3)]
    body = b"\n".join([
        json.dumps(good[0]).encode(),
        _with(event_json(), "place.name", "\\ud800"),
        json.dumps(good[1]).encode(),
        _with(event_json(), "notes", "\\udfff"),
        json.dumps(good[2]).encode(),
    ]) + b"\n"  # fmt: skip
    response = await client.post("/v1/events", content=body, headers=NDJSON)
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (3, 2)
    assert [(e["line"], e["field"]) for e in result["errors"]] == [(2, "place.name"), (4, "notes")]
    assert all("surrogate" in e["reason"] for e in result["errors"])
    assert await stored_count(owner) == 3
