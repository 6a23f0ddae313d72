"""Conventions every route keeps (issue 15): one problem type per error kind with a detail a
human reads (never a pattern), a 422 for a query parameter the route does not take, 404 and
405 before the key check, 201 for what a POST created."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, Final

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from contracts.problems import CATALOGUE, TYPE_BASE
from service.app import create_app
from service.settings import Settings
from tests.api.conftest import assert_problem
from tests.payloads import at_place, event_json

Client = AsyncTestClient[Litestar]
NDJSON: Final = {"content-type": "application/x-ndjson"}
#: What a regular expression shows when one leaks into a detail.
REGEX_MARKS: Final = ("(?:", "$(?!", "[0-9]", "\\d", "^(")


def _problem_type(body: dict[str, Any], slug: str) -> None:
    assert body["type"] == TYPE_BASE + slug, body
    assert body["title"] == CATALOGUE[slug].title
    assert not any(mark in body["detail"] for mark in REGEX_MARKS), body["detail"]


@pytest.fixture
async def bare(settings: Settings) -> AsyncIterator[Client]:
    """The app with no key sent and no anonymous reads (as with DATABASE_URL)."""
    async with AsyncTestClient(app=create_app(settings.with_(anonymous_reads="false"))) as client:
        yield client


# --- one type per kind, a detail in words


async def test_a_bad_date_and_a_bad_limit_have_the_same_type_and_say_what_they_take(
    client: Client,
) -> None:
    """Issue 15's finding: a bad date was ``http-422`` with a 400-character regex as its
    detail, a bad ``limit`` ``invalid-parameter``. Both are now ``invalid-parameter``, naming
    the parameter, what it takes in words and what it got."""
    date = assert_problem(await client.get("/v1/state?valid_at=2017-13-01"), 422, "valid_at")
    _problem_type(date, "invalid-parameter")
    assert date["detail"] == (
        "valid_at: expected a date (YYYY-MM-DD) or an RFC 3339 time with an offset "
        "(2017-06-05T10:00:00Z), got '2017-13-01'"
    )
    over = assert_problem(await client.get("/v1/state?limit=1001"), 422, "limit")
    _problem_type(over, "invalid-parameter")
    assert over["detail"] == "limit: expected a whole number from 1 to 1000, got '1001'"
    zero = assert_problem(await client.get("/v1/state?limit=0"), 422, "limit")
    _problem_type(zero, "invalid-parameter")
    assert zero["detail"] == "limit: expected a whole number of at least 1, got '0'"


BAD: Final = [
    ("/v1/state?known_at=position:x", "known_at", "position:N"),
    ("/v1/state?known_at=yesterday", "known_at", "position:N"),
    ("/v1/state?bbox=1,2", "bbox", "west,south,east,north"),
    ("/v1/state?bbox=39,35,37,37", "bbox", "west <= east"),
    ("/v1/state?disputed=maybe", "disputed", "true or false"),
    ("/v1/state?status=held", "status", "one of controlled, encircled, contested, unknown"),
    ("/v1/state?format=xml", "format", "one of json, geojson, csv"),
    ("/v1/state?side=ISIS", "side", "an id of lower-case letters"),
    ("/v1/state?cursor=A%20B", "cursor", "next_cursor"),
    ("/v1/events?after=-1", "after", "a whole number from 0 to"),
    ("/v1/events?type=battle", "type", "one of advance,"),
    ("/v1/events/0", "event_id", "a UUID"),
    ("/v1/places/A", "place_id", "an id of lower-case letters"),
    ("/v1/places/" + "a" * 129, "place_id", "at most 128 characters"),
    ("/v1/state/changes?to=2017-06-05", "from", "got nothing"),
    ("/v1/state/changes?from=2017-06-05&to=2017-06-01", "to", "not before from"),
    ("/v1/state/changes?from=2017-06-01&to=2017-06-05&cursor=x@y", "cursor", "next_cursor"),
    ("/v1/audit/verify?head_hash=zz", "head_hash", "64 hexadecimal digits"),
    ("/v1/audit/verify?projections=some", "projections", "one of sample, full, off"),
    ("/v1/export?format=xls", "format", "one of ndjson, csv, acled"),
]


@pytest.mark.parametrize(("url", "field", "words"), BAD, ids=[b[0] for b in BAD])
async def test_every_refused_parameter_is_invalid_parameter_in_words(
    client: Client, url: str, field: str, words: str
) -> None:
    """Each refused parameter, whoever refuses it (its declared pattern or bounds, a parser,
    a handler's check), is ``invalid-parameter`` naming it in ``field`` and in the detail,
    with what it takes in words; no detail quotes a pattern."""
    body = assert_problem(await client.get(url), 422, field)
    _problem_type(body, "invalid-parameter")
    assert body["detail"].startswith(f"{field}: expected "), body["detail"]
    assert words in body["detail"], body["detail"]


async def test_a_refused_header_names_it_in_words(client: Client) -> None:
    """Header parameters too: ``Last-Event-ID`` and ``Idempotency-Key`` are refused as
    ``invalid-parameter`` with their wire names."""
    live = await client.get("/v1/events/stream", headers={"last-event-id": "x"})
    _problem_type(assert_problem(live, 422, "last-event-id"), "invalid-parameter")
    keyed = await client.post("/v1/events", json=event_json(), headers={"idempotency-key": ""})
    body = assert_problem(keyed, 422, "idempotency-key")
    _problem_type(body, "invalid-parameter")
    assert "printable ASCII" in body["detail"]


# --- unknown query parameters


def _url(path: str) -> str:
    return path.replace("{place_id}", "sy-maskanah").replace("{event_id}", str(uuid.uuid4()))


async def test_every_documented_route_refuses_a_parameter_it_does_not_take(
    client: Client,
) -> None:
    """Issue 15's finding: ``GET /v1/events?palce=x`` answered 200 with the whole log. Every
    operation of the API document (GET and POST, with path parameters or none) now answers
    422 ``unknown-parameter`` naming it, before doing anything: nothing is stored."""
    document = (await client.get("/schema/openapi.json")).json()
    checked = 0
    for path, item in document["paths"].items():
        for method in item:
            body = event_json() if method == "post" else None
            answer = await client.request(
                method.upper(), _url(path) + "?palce=sy-maskanah", json=body
            )
            problem = assert_problem(answer, 422, "palce")
            _problem_type(problem, "unknown-parameter")
            assert "'palce'" in problem["detail"]
            checked += 1
    assert checked >= 20
    assert (await client.get("/v1/events")).json()["events"] == []


async def test_the_detail_names_every_unknown_parameter_and_those_the_route_takes(
    client: Client,
) -> None:
    """Two unknown names are both named (the first in ``field``), with the parameters the
    route takes; a route that takes none says so."""
    body = assert_problem(await client.get("/v1/state/extent?a=1&b=2&known_at="), 422, "a")
    assert body["detail"] == (
        "unknown query parameters 'a', 'b'; GET /v1/state/extent takes known_at"
    )
    health = assert_problem(await client.get("/health?verbose=1"), 422, "verbose")
    assert health["detail"].endswith("GET /health takes no query parameter")


async def test_every_declared_parameter_is_taken(client: Client) -> None:
    """The check reads each handler's declared parameters (and their wire names: ``from``,
    ``format``, ``type``), so every documented parameter is taken, none refused as unknown."""
    document = (await client.get("/schema/openapi.json")).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            if not names or method != "get" or path == "/v1/events/stream":
                continue
            answer = await client.get(_url(path), params=dict.fromkeys(names, ""))
            if answer.status_code == 422:
                assert answer.json()["type"] != TYPE_BASE + "unknown-parameter", (path, answer.text)
    good = await client.get("/v1/state/changes", params={"from": "2017-06-01", "to": "2017-06-05"})
    assert good.status_code == 200, good.text


async def test_the_map_page_its_files_and_the_schema_take_any_query(client: Client) -> None:
    """The map page carries its view in its query (``?valid_at=&place=&q=``), so the page,
    its files and the ``/schema`` pages (outside the API document) take any parameter."""
    assert (await client.get("/?valid_at=2017-06-05&place=sy-maskanah&q=x")).status_code == 200
    assert (await client.get("/map/map.js?v=1")).status_code == 200
    assert (await client.get("/schema/openapi.json?x=1")).status_code == 200


async def test_an_unknown_parameter_on_an_import_stores_nothing(client: Client) -> None:
    """An NDJSON import with a misspelt parameter is refused whole before its body is read."""
    body = (json.dumps(at_place("sy-a")) + "\n").encode()
    refused = await client.post("/v1/events?dry_run=1", content=body, headers=NDJSON)
    _problem_type(assert_problem(refused, 422, "dry_run"), "unknown-parameter")
    assert (await client.get("/v1/events")).json()["events"] == []


# --- unknown routes: 404 before the key check


async def test_an_unknown_route_is_404_before_the_key_check(bare: Client) -> None:
    """Issue 15's finding: an unknown route without a key answered 401. A path no route has
    is 404 ``not-found`` with no key, a bad key or any key; a method the route does not take
    is 405 ``method-not-allowed`` with ``Allow``; a route that exists still needs its key."""
    for path in ("/nope", "/v1/nope", "/v1/state/nope", "/v1/places/sy-a/nope", "/v2/state"):
        for headers in ({}, {"authorization": "Bearer flk_unknown"}):
            answer = await bare.get(path, headers=headers)
            body = assert_problem(answer, 404, "path")
            _problem_type(body, "not-found")
            assert "www-authenticate" not in answer.headers
    wrong = await bare.delete("/v1/events")
    body = assert_problem(wrong, 405)
    _problem_type(body, "method-not-allowed")
    assert set(wrong.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    _problem_type(assert_problem(await bare.get("/v1/state"), 401), "unauthorized")
    _problem_type(assert_problem(await bare.get("/v1/audit/head"), 401), "unauthorized")


async def test_a_404_before_the_key_check_is_logged_and_counted(bare: Client) -> None:
    """The 404 answered before the key check has its request id and is counted in the
    metrics like any answer."""
    answer = await bare.get("/v1/nope")
    assert answer.headers["x-request-id"] == answer.json()["request_id"]
    metrics = (await bare.get("/metrics")).text
    assert 'status="404"' in metrics


# --- created: 201


async def test_one_event_created_is_201_with_its_location(client: Client) -> None:
    """One new event: 201 and ``Location`` naming it (and it is there); the same again: 200,
    no Location."""
    event = event_json()
    created = await client.post("/v1/events", json=event)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/v1/events/{event['id']}"
    assert (await client.get(created.headers["location"])).status_code == 200
    again = await client.post("/v1/events", json=event)
    assert again.status_code == 200
    assert "location" not in again.headers


async def test_an_ndjson_import_is_201_when_it_stored_anything(client: Client) -> None:
    """An NDJSON import that stored something new: 201; the same again (all duplicates): 200;
    one whose every line is refused: 200 (nothing created)."""
    body = "".join(json.dumps(at_place(p)) + "\n" for p in ("sy-a", "sy-b")).encode()
    first = await client.post("/v1/events", content=body, headers=NDJSON)
    assert first.status_code == 201, first.text
    assert first.json()["accepted"] == 2
    again = await client.post("/v1/events", content=body, headers=NDJSON)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] == 2
    refused = await client.post("/v1/events", content=b"{oops\n", headers=NDJSON)
    assert refused.status_code == 200, refused.text
    assert refused.json()["rejected"] == 1
