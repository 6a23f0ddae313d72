"""The OpenAPI document says what the service does: one regression test per schemathesis finding.

Each finding of ``python -m reliability.fuzz`` was fixed in the service or the document;
these pin the fixes without running schemathesis (tests/reliability/test_fuzz.py does).
"""

from __future__ import annotations

import re
from typing import Any, Final

from litestar import Controller, Litestar, get, post
from litestar.testing import AsyncTestClient, TestClient

from reliability.fuzz import EXCLUDED_CHECKS
from service.api import parameters as params
from tests.api.conftest import assert_problem
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]
MAX_POSITION: Final = 2**63 - 1


async def _document(client: Client) -> dict[str, Any]:
    answer = await client.get("/schema/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post")
    ]


async def test_every_string_parameter_has_a_pattern_and_every_integer_bounds(
    client: Client,
) -> None:
    """Finding: query parameters documented as any string (a NUL byte then reached
    PostgreSQL: a 500). Every string parameter now has a pattern the service enforces, and
    every integer a minimum and an integral maximum (no float 9.223372036854776e18)."""
    document = await _document(client)
    checked = 0
    for method, path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "if-none-match":
                continue  # any ETag list: compared, never parsed
            schema = parameter["schema"]
            kinds = {s.get("type") for s in schema.get("oneOf", [schema])} - {"null"}
            where = f"{method} {path} {parameter['name']}"
            if kinds == {"string"}:
                assert "pattern" in schema, where
            if kinds == {"integer"}:
                assert isinstance(schema.get("minimum"), int), where
                assert isinstance(schema.get("maximum"), int), where
                assert schema["maximum"] <= MAX_POSITION, where
            checked += 1
    assert checked > 30


async def test_limit_is_bounded_by_the_page_setting(client: Client) -> None:
    """Finding: ``limit`` without a maximum, though the service refuses more than
    FRONTLINE_MAX_PAGE (1000)."""
    document = await _document(client)
    limits = [
        p["schema"]
        for _, _, operation in _operations(document)
        for p in operation.get("parameters", [])
        if p["name"] == "limit"
    ]
    assert (
        len(limits) == 9
    )  # events, state, changes, disputes, a place's events and history, two casualties,
    # the unmapped sides
    assert all(schema["maximum"] == 1000 for schema in limits)
    over = await client.get("/v1/state", params={"limit": 1001})
    assert_problem(over, 422, "limit")


async def test_batch_schema_does_not_refer_to_itself(client: Client) -> None:
    """Finding: ``components.schemas.Batch`` was ``{"$ref": ".../Batch"}``."""
    batch = (await _document(client))["components"]["schemas"]["Batch"]
    assert "$ref" not in batch
    assert batch["required"] == ["events"]


async def test_changes_requires_from_and_to(client: Client) -> None:
    """Finding: ``from`` and ``to`` of /v1/state/changes documented as optional."""
    document = await _document(client)
    parameters = document["paths"]["/v1/state/changes"]["get"]["parameters"]
    assert {p["name"]: p["required"] for p in parameters if p["name"] in ("from", "to")} == {
        "from": True,
        "to": True,
    }
    assert_problem(await client.get("/v1/state/changes", params={"to": "2017-06-05"}), 422, "from")


async def test_changes_document_its_page_its_filters_and_its_answer(client: Client) -> None:
    """/v1/state/changes states its parameters (a bounded ``limit``, a ``cursor`` whose pattern
    is ``place@instant``, ``place``, ``side``, ``bbox``, ``known_at``, the boolean ``net``,
    and, as every read that a replica may answer, ``min_position`` and its header) and its
    answers: a frame, the range, the changes (place, ``at``, what changed, the segments
    before and after, the before nullable) and ``next_cursor``; with ``net``, each place once
    (its first and last change, how many, what changed, before and after); a segment
    documents ``held_since``."""
    document = await _document(client)
    operation = document["paths"]["/v1/state/changes"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == {
        "from", "to", "known_at", "place", "side", "bbox", "limit", "cursor", "net",
        "min_position", "Frontline-Min-Position",
    }  # fmt: skip
    assert parameters["net"]["schema"]["type"] == "boolean"
    assert parameters["net"]["required"] is False
    assert (parameters["limit"]["schema"]["minimum"], parameters["limit"]["schema"]["maximum"]) == (
        1,
        1000,
    )
    assert parameters["cursor"]["schema"]["pattern"] == params.CHANGES_CURSOR_PATTERN
    assert parameters["place"]["schema"]["pattern"] == params.SLUG_PATTERN
    assert parameters["bbox"]["schema"]["pattern"] == params.BBOX_PATTERN
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    schemas = document["components"]["schemas"]
    changes, net = (schemas[one["$ref"].rsplit("/", 1)[1]] for one in answer["oneOf"])
    assert set(changes["required"]) == {"frame", "from", "to", "items", "next_cursor", "next"}
    assert set(net["required"]) == {"frame", "from", "to", "net", "items", "next_cursor", "next"}
    # `net` tells the two apart, an empty page included (schemathesis found an empty page
    # valid under both: a oneOf violation).
    assert changes["properties"]["net"]["const"] is False
    assert net["properties"]["net"]["const"] is True
    net_change = schemas["NetChange"]
    assert set(net_change["required"]) == {
        "place", "first_at", "last_at", "transitions", "changed", "before", "after",
    }  # fmt: skip
    transition = schemas["Transition"]
    assert set(transition["required"]) == {"place", "at", "changed", "before", "after"}
    assert {"type": "null"} in transition["properties"]["before"]["oneOf"]
    assert transition["properties"]["changed"]["items"]["enum"] == [
        "controller", "status", "status_by", "disputed",
    ]  # fmt: skip
    assert "422" in operation["responses"]
    held_since = schemas["Segment"]["properties"]["held_since"]
    assert {"type": "string", "format": "date-time"} in held_since["oneOf"]


async def test_every_operation_documents_what_the_guard_and_the_key_check_answer(
    client: Client,
) -> None:
    """Every operation lists the connection guard's 408, 414 and 431 (answered before any
    route, service/server.py); every keyed one also its 401, 403 and 429, the 429 of a plain route
    naming both the keyed and the anonymous rate limit; the open ones (health) carry no security."""
    document = await _document(client)
    keyed = 0
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        assert {"408", "414", "431"} <= set(responses), (method, path)
        if "security" in operation:
            keyed += 1
            assert {"401", "403", "429"} <= set(responses), (method, path)
        else:
            assert "401" not in responses, (method, path)
    assert keyed > 0
    rate_limited = document["paths"]["/v1/events"]["post"]["responses"]["429"]
    assert "FRONTLINE_ANONYMOUS_RATE_LIMIT" in rate_limited["description"]
    assert "security" not in document["paths"]["/health"]["get"]


async def test_streaming_and_other_formats_have_their_media_types(client: Client) -> None:
    """Finding: NDJSON, SSE, GeoJSON and CSV answers documented as application/json."""
    paths = (await _document(client))["paths"]
    media = {
        path: set(paths[path]["get"]["responses"]["200"]["content"])
        for path in ("/v1/events", "/v1/events/stream", "/v1/state", "/v1/export")
    }
    assert media["/v1/events"] == {"application/json", "application/x-ndjson"}
    assert media["/v1/events/stream"] == {"text/event-stream", "application/x-ndjson"}
    assert media["/v1/state"] == {"application/json", "application/geo+json", "text/csv"}
    assert media["/v1/export"] == {"application/x-ndjson", "text/csv"}
    replay = await client.get("/v1/events", headers={"accept": "application/x-ndjson"})
    assert replay.headers["content-type"].startswith("application/x-ndjson")


async def test_a_nul_byte_in_a_filter_is_a_422_not_a_500_or_a_broken_connection(
    client: Client,
) -> None:
    """Finding: ``GET /v1/events?place=%00`` was a 500 (PostgreSQL refuses NUL in text),
    and ``GET /v1/events/stream?place=%00`` broke the connection mid-stream."""
    assert_problem(await client.get("/v1/events?place=%00"), 422, "place")
    assert_problem(await client.get("/v1/events?source=a%00b"), 422, "source")
    assert_problem(await client.get("/v1/events/stream?place=%00"), 422, "place")
    assert_problem(await client.get("/v1/places/a%00b"), 422, "place_id")
    assert_problem(await client.get("/v1/state?side=%00"), 422, "side")


async def test_empty_filters_are_refused_as_the_document_says(client: Client) -> None:
    """Finding: ``type=`` and ``format=`` were schema-valid (any string) but refused."""
    assert_problem(await client.get("/v1/events?type="), 422, "type")
    assert_problem(await client.get("/v1/state?format="), 422, "format")
    ok = await client.get("/v1/events", params={"type": "capture"})
    assert ok.status_code == 200


async def test_event_ids_in_paths_are_uuids_as_documented(client: Client) -> None:
    """Finding: ``/v1/events/0`` was schema-valid (any string); the document now says UUID,
    and forms ``uuid.UUID`` would also take (no hyphens, braces) are refused as documented."""
    assert_problem(await client.get("/v1/events/0"), 422, "event_id")
    assert_problem(await client.get("/v1/events/0123456789abcdef0123456789abcdef"), 422, "event_id")
    missing = await client.get("/v1/events/01234567-89ab-cdef-0123-456789abcdef")
    assert_problem(missing, 404, "event_id")


def test_instants_the_pattern_allows_are_the_ones_the_parser_takes() -> None:
    """Finding: dates the document allowed were refused (year 0000, 2017-02-30, a datetime
    without offset, a year that leaves the calendar once moved to UTC)."""
    pattern = re.compile(params.OPTIONAL_INSTANT_PATTERN)
    allowed = [
        "2017-06-03",
        "2016-02-29",
        "2000-02-29",
        "2017-06-03T10:00Z",
        "2017-06-03 10:00:00.5+05:30",
        "1000-01-01T00:00+23:59",
        "9899-12-31T23:59:59.999999-23:59",
        "",
    ]
    refused = [
        "0000",
        "0000-01-01",
        "2017-02-29",
        "1900-02-29",
        "2017-02-30",
        "2017-13-01",
        "2017-06-03T10:00",
        "2017-06-03T10:00Z\n",
        "9999-12-31T23:00-05:00",
        "2017-W22-6",
    ]
    for text in allowed:
        assert pattern.search(text), text
        if text:
            params.valid_time(text, "valid_at")
    for text in refused:
        assert not pattern.search(text), text


async def test_an_instant_outside_the_pattern_is_a_422_naming_the_parameter(
    client: Client,
) -> None:
    """Finding: ``known_at`` with a character outside any date was schema-valid."""
    assert_problem(await client.get("/v1/state/extent?known_at=%F1%B0%9F%BC"), 422, "known_at")
    assert_problem(await client.get("/v1/state?valid_at=2017-02-29"), 422, "valid_at")
    leap = await client.get("/v1/state", params={"valid_at": "2016-02-29"})
    assert leap.status_code == 200
    position = await client.get("/v1/state/extent", params={"known_at": "position:0"})
    assert position.status_code == 200


async def test_bbox_numbers_are_as_documented(client: Client) -> None:
    """Finding: bbox numbers in forms the service parsed but the document did not say
    (``1e1``, ``1_0``, ``inf``); now at most 12 decimals, plain decimal notation."""
    ok = await client.get("/v1/state", params={"bbox": "37.123456789012,35,39,37"})
    assert ok.status_code == 200
    for bad in ("1e1,0,20,10", "1_0,0,20,10", "inf,0,20,10", "37.1234567890123,35,39,37"):
        assert_problem(await client.get("/v1/state", params={"bbox": bad}), 422, "bbox")


async def test_occurred_start_0000_is_refused_by_the_document_and_the_service(
    client: Client,
) -> None:
    """Finding: ``occurred.start: "0000"`` was allowed by the document (any 4 to 40
    characters) but refused by the service. Now both state and enforce the same pattern for
    ``occurred.start``, ``occurred.end`` and ``source.published_at``."""
    schemas = (await _document(client))["components"]["schemas"]
    pattern = re.compile(schemas["Occurred"]["properties"]["start"]["pattern"])
    assert not pattern.search("0000")
    assert pattern.search("2017-06-03")
    published = schemas["Source"]["properties"]["published_at"]["anyOf"][0]["pattern"]
    assert published == schemas["Occurred"]["properties"]["end"]["anyOf"][0]["pattern"]
    refused = await client.post("/v1/events", json=event_json(occurred={"start": "0000"}))
    assert_problem(refused, 422, "occurred.start")
    week = event_json(source={"published_at": "2017-W22-6"})
    assert_problem(await client.post("/v1/events", json=week), 422, "source.published_at")
    leap = await client.post("/v1/events", json=event_json(occurred={"start": "2016-02-29"}))
    assert leap.status_code == 201, leap.text


class _TwoMethods(Controller):
    path = "/things"

    @get("/")
    async def read(self) -> str:
        return "read"

    @post("/")
    async def write(self) -> str:
        return "write"


def test_litestar_options_allow_bug_that_excludes_one_check() -> None:
    """Why reliability/fuzz.py excludes schemathesis's allow_header_conformance: in a bare
    Litestar app, without Frontline's code, OPTIONS on a path with GET and POST lists only
    one of them (the first declared). When this fails, Litestar fixed it: drop the exclusion
    (EXCLUDED_CHECKS)."""
    with TestClient(app=Litestar([_TwoMethods])) as bare:
        allow = {m.strip() for m in bare.options("/things").headers["allow"].split(",")}
    assert allow == {"GET", "OPTIONS"}
    assert "allow_header_conformance" in EXCLUDED_CHECKS


#: Stable operation ids: clients generated from the document name their methods after these,
#: so a change here is a breaking change of the API.
OPERATION_IDS: Final = {
    ("get", "/v1/events"): "replayEvents",
    ("post", "/v1/events"): "appendEvents",
    ("get", "/v1/events/stream"): "followEvents",
    ("get", "/v1/events/{event_id}"): "getEvent",
    ("post", "/v1/imports"): "importFile",
    ("get", "/v1/state"): "getState",
    ("get", "/v1/state/areas"): "getStateAreas",
    ("get", "/v1/state/changes"): "getStateChanges",
    ("get", "/v1/state/extent"): "getStateExtent",
    ("get", "/v1/disputes"): "getDisputes",
    ("get", "/v1/places/{place_id}"): "getPlace",
    ("get", "/v1/places/{place_id}/timeline"): "getPlaceTimeline",
    ("get", "/v1/places/{place_id}/events"): "getPlaceEvents",
    ("get", "/v1/places/{place_id}/history"): "getPlaceHistory",
    ("get", "/v1/places/{place_id}/casualties"): "getPlaceCasualties",
    ("get", "/v1/casualties"): "getCasualties",
    ("post", "/v1/admin/rebuild"): "rebuildProjections",
    ("get", "/v1/audit/head"): "getAuditHead",
    ("get", "/v1/audit/key"): "getAuditKey",
    ("get", "/v1/audit/verify"): "verifyLog",
    ("get", "/v1/export"): "exportLog",
    ("get", "/v1/sides"): "getSides",
    ("get", "/v1/sides/{side}"): "getSide",
    ("get", "/v1/sides/unmapped"): "getUnmappedSides",
    ("post", "/v1/sides"): "registerSides",
    ("get", "/v1/places/merges"): "getPlaceMerges",
    ("post", "/v1/places/{place_id}/merges"): "mergePlaces",
    ("post", "/v1/places/{place_id}/unmerges"): "unmergePlaces",
    ("get", "/v1/sources"): "getSources",
    ("get", "/v1/sources/{source}"): "getSource",
    ("post", "/v1/sources"): "registerSources",
    ("get", "/health"): "getHealth",
    ("get", "/ready"): "getReady",
    ("get", "/metrics"): "getMetrics",
}


async def test_every_operation_has_its_stable_id_and_a_documented_tag(client: Client) -> None:
    """Every operation carries the operation id written here (explicit in its decorator, not
    made up by Litestar from the handler's name, as ``V1EventsReplay`` was), ids are unique,
    and every operation has tags, each one listed with a description at the top."""
    document = await _document(client)
    ids = {(method, path): op.get("operationId") for method, path, op in _operations(document)}
    assert ids == OPERATION_IDS
    assert len(set(ids.values())) == len(ids)
    described = {tag["name"] for tag in document["tags"] if tag.get("description")}
    for method, path, operation in _operations(document):
        assert operation["tags"], (method, path)
        assert set(operation["tags"]) <= described, (method, path)


_SOURCES: Final = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


async def test_swagger_and_redoc_load_only_files_this_server_serves(app: Litestar) -> None:
    """Issue 15's finding: ``/schema/swagger`` loaded its assets from a CDN and was blank
    offline. Swagger UI and ReDoc are vendored (service/api/static/vendor, scripts/
    docs-assets.sh): each page names only files of this server (no favicon, font or script
    from elsewhere), and each of them is served without a key, with its licence beside it;
    /schema itself is ReDoc."""
    async with AsyncTestClient(app=app) as anonymous:
        for page in ("/schema/swagger", "/schema/redoc", "/schema"):
            answer = await anonymous.get(page)
            assert answer.status_code == 200, page
            sources = [s for s in _SOURCES.findall(answer.text) if s != "data:,"]
            assert sources, page
            for source in sources:
                assert source.startswith("/schema/assets/"), (page, source)
                served = await anonymous.get(source)
                assert served.status_code == 200, source
                assert len(served.content) > 10_000, source
            assert "https://" not in answer.text.split("<body>")[0], page
        for licence in ("swagger-ui-dist-5.36.0/LICENSE", "redoc-2.5.4/LICENSE"):
            assert (await anonymous.get(f"/schema/assets/{licence}")).status_code == 200
        missing = await anonymous.get("/schema/assets/leaflet-1.9.4/leaflet.js")
        assert_problem(missing, 404)


async def test_every_read_documents_the_headers_it_answers_with(client: Client) -> None:
    """Every documented GET under /v1 (the live stream aside) lists ETag and Cache-Control on
    its 200, and Link when it takes a cursor; the answers really carry them."""
    for _ in range(2):
        assert (await client.post("/v1/events", json=event_json())).status_code == 201
    document = await _document(client)
    reads = [
        (path, operation)
        for method, path, operation in _operations(document)
        if method == "get" and path.startswith("/v1/") and path != "/v1/events/stream"
    ]
    assert len(reads) > 10
    for path, operation in reads:
        headers = operation["responses"]["200"].get("headers", {})
        assert {"ETag", "Cache-Control"} <= set(headers), path
        paged = any(p["name"] == "cursor" for p in operation.get("parameters", []))
        assert ("Link" in headers) == paged, path
    answer = await client.get("/v1/events?limit=1")
    assert answer.headers["etag"].startswith('"f1-')
    assert answer.headers["cache-control"] == "private, no-cache"
    assert answer.headers["link"] == '</v1/events?limit=1&cursor=1>; rel="next"'
