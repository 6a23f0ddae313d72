"""Every operation of the OpenAPI document has an example answer for each media type of its
success answers, the example fits the document's schema, and it is what the service answers
(service/api/examples.py).

``make openapi-examples`` runs the last test with ``FRONTLINE_WRITE_EXAMPLES=1``, which writes
the answers it got to ``service/api/examples.json`` (after a change of an answer's shape).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import jsonschema_rs
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.api.examples import EXAMPLES_FILE, load_examples
from service.app import create_app
from service.domain.audit import SigningKey
from service.settings import Settings

Client = AsyncTestClient[Litestar]
ROOT: Final = Path(__file__).resolve().parents[2]
SEED: Final = ROOT / "demo" / "seed.ndjson"
ACLED: Final = ROOT / "tests" / "fixtures" / "interop" / "acled.csv"
JSON_TYPES: Final = ("application/json", "application/geo+json")
NDJSON: Final = "application/x-ndjson"
METRICS: Final = "text/plain; version=0.0.4; charset=utf-8"
EVENT: Final = {
    "id": "5b0c2c1e-6f0a-4a53-9d7e-6b7a3c1f2a10",
    "type": "capture",
    "place": {"id": "sy-maskanah", "name": "Maskanah", "kind": "town", "lat": 35.96, "lon": 38.04},
    "side": "syrian-government",
    "actor": "Tiger Forces",
    "opponent": "isis",
    "occurred": {"start": "2017-06-03", "precision": "day"},
    "source": {"name": "South Front", "reliability": "C", "alignment": "syrian-government"},
    "credibility": 3,
    "hedge": "reported",
    "quote": "On Saturday, army troops liberated Maskanah itself",
}
#: The request each example answers: operation id, status, media type -> method, path and
#: query, the Accept header. In this order (the appends and the import before the reads).
REQUESTS: Final[list[tuple[str, str, str, str, str, str | None]]] = [
    ("appendEvents", "201", "application/json", "POST", "/v1/events", None),
    ("appendEvents", "200", "application/json", "POST", "/v1/events", None),
    ("importFile", "201", "application/json", "POST", "/v1/imports?format=acled", None),
    ("importFile", "200", "application/json", "POST", "/v1/imports?format=acled", None),
    ("replayEvents", "200", "application/json", "GET", "/v1/events?after=0&limit=2", None),
    ("replayEvents", "200", NDJSON, "GET", "/v1/events?after=0&limit=2", NDJSON),
    ("getEvent", "200", "application/json", "GET", f"/v1/events/{EVENT['id']}", None),
    ("getState", "200", "application/json", "GET", "/v1/state?valid_at=2017-06-05&limit=2", None),
    (
        "getState",
        "200",
        "application/geo+json",
        "GET",
        "/v1/state?valid_at=2017-06-05&limit=2&format=geojson",
        None,
    ),
    ("getState", "200", "text/csv", "GET", "/v1/state?valid_at=2017-06-05&format=csv", None),
    (
        "getStateAreas",
        "200",
        "application/geo+json",
        "GET",
        "/v1/state/areas?valid_at=2017-06-05&bbox=37,35,39,37",
        None,
    ),
    (
        "getStateChanges",
        "200",
        "application/json",
        "GET",
        "/v1/state/changes?from=2017-06-01&to=2017-06-06&limit=2",
        None,
    ),
    ("getStateExtent", "200", "application/json", "GET", "/v1/state/extent", None),
    ("getDisputes", "200", "application/json", "GET", "/v1/disputes?valid_at=2017-06-05", None),
    (
        "getPlace",
        "200",
        "application/json",
        "GET",
        "/v1/places/sy-maskanah?valid_at=2017-06-05",
        None,
    ),
    ("getPlaceTimeline", "200", "application/json", "GET", "/v1/places/sy-maskanah/timeline", None),
    ("getPlaceEvents", "200", "application/json", "GET", "/v1/places/sy-maskanah/events", None),
    (
        "getPlaceHistory",
        "200",
        "application/json",
        "GET",
        "/v1/places/sy-maskanah/history?limit=2",
        None,
    ),
    (
        "getPlaceCasualties",
        "200",
        "application/json",
        "GET",
        "/v1/places/sy-abbasiya/casualties",
        None,
    ),
    (
        "getCasualties",
        "200",
        "application/json",
        "GET",
        "/v1/casualties?from=2017-06-01&to=2017-06-07&limit=2",
        None,
    ),
    ("getAuditHead", "200", "application/json", "GET", "/v1/audit/head", None),
    ("getAuditKey", "200", "application/json", "GET", "/v1/audit/key", None),
    ("verifyLog", "200", "application/json", "GET", "/v1/audit/verify?projections=off", None),
    ("exportLog", "200", NDJSON, "GET", "/v1/export?known_at=position:30", None),
    ("exportLog", "200", "text/csv", "GET", "/v1/export?known_at=position:30&format=csv", None),
    ("rebuildProjections", "200", "application/json", "POST", "/v1/admin/rebuild", None),
    ("registerSides", "201", "application/json", "POST", "/v1/sides", None),
    ("registerSides", "200", "application/json", "POST", "/v1/sides", None),
    ("getSides", "200", "application/json", "GET", "/v1/sides", None),
    ("getSide", "200", "application/json", "GET", "/v1/sides/government-of-syria", None),
    ("getUnmappedSides", "200", "application/json", "GET", "/v1/sides/unmapped?limit=2", None),
    ("registerSources", "201", "application/json", "POST", "/v1/sources", None),
    ("registerSources", "200", "application/json", "POST", "/v1/sources", None),
    ("getSources", "200", "application/json", "GET", "/v1/sources", None),
    ("getSource", "200", "application/json", "GET", "/v1/sources/south%20front", None),
    ("mergePlaces", "201", "application/json", "POST", "/v1/places/sy-khanasser/merges", None),
    ("mergePlaces", "200", "application/json", "POST", "/v1/places/sy-khanasser/merges", None),
    ("getPlaceMerges", "200", "application/json", "GET", "/v1/places/merges", None),
    ("unmergePlaces", "201", "application/json", "POST", "/v1/places/sy-khanasser/unmerges", None),
    ("unmergePlaces", "200", "application/json", "POST", "/v1/places/sy-khanasser/unmerges", None),
    ("getHealth", "200", "application/json", "GET", "/health", None),
    ("getReady", "200", "application/json", "GET", "/ready", None),
    ("getMetrics", "200", METRICS, "GET", "/metrics", None),
]
WRITING: Final = os.environ.get("FRONTLINE_WRITE_EXAMPLES") == "1"
SIDE: Final = {
    "id": "5958a936-231d-4c5f-b7cf-b5cbfc7f6990",
    "side": "syrian-government",
    "name": "Syrian government forces",
    "kind": "state_force",
    "colour": "#d55e00",
    "aliases": ["government-of-syria", "military-forces-of-syria-2000", "syrian-arab-army"],
}
"""The side the example of ``registerSides`` registers (``getSide`` reads it by an alias);
its fixed id makes the second POST a duplicate (the 200 example)."""
SOURCE: Final = {
    "id": "6e7f92b4-1b67-46cc-9129-cbb6717641e2",
    "source": "South Front",
    "reliability": "C",
    "alignment": "syrian-government",
}
"""The source the example of ``registerSources`` registers (a fixed id, as for ``SIDE``)."""
MERGE: Final = {
    "id": "3f0b6f53-8a53-4c1e-9d0e-5b7f1c2a9e41",
    "merged": "sy-khanasser-alam-hill",
    "notes": "Alam hill is part of Khanasser",
}
"""The merge the example of ``mergePlaces`` makes (a fixed id, as for ``SIDE``)."""
UNMERGE: Final = {
    "id": "a1c5d3e7-2b4f-4a6c-8e0d-7f9b1d3c5e2a",
    "merged": "sy-khanasser-alam-hill",
    "retracts": MERGE["id"],
}
"""The unmerge of ``unmergePlaces``: it names the merge it retracts, so that the second POST
is a duplicate (200) once the merge is no longer in force."""
NOT_CAPTURED: Final = {
    ("followEvents", "200", "text/event-stream"),
    ("followEvents", "200", NDJSON),
}
"""A live stream never ends: its examples are written by hand in examples.json."""


async def _document(client: Client) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
    return document


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    return jsonschema_rs.validator_for({**schema, "components": document["components"]})


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in ("get", "post")
    }


async def test_every_operation_has_an_example_that_fits_its_schema(client: Client) -> None:
    """Every operation's success answers (2xx with a body) hold an example for each of their
    media types, named by the request that gave it; a JSON example is valid against the
    answer's schema, a text one (NDJSON, CSV, SSE, metrics) is not empty."""
    document = await _document(client)
    operations = _operations(document)
    checked = 0
    for operation_id, operation in operations.items():
        answers = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        assert any(r.get("content") for r in answers.values()), operation_id
        for status, response in answers.items():
            for media, content in (response.get("content") or {}).items():
                where = (operation_id, status, media)
                example = content.get("examples", {}).get("example")
                assert example is not None, where
                assert example["summary"], where
                if media in JSON_TYPES:
                    errors = list(
                        _validator(document, content["schema"]).iter_errors(example["value"])
                    )
                    assert not errors, (where, [str(e) for e in errors[:3]])
                else:
                    assert isinstance(example["value"], str), where
                    assert example["value"].strip(), where
                checked += 1
    assert checked >= 25


def _trim(value: Any) -> Any:
    """Lists cut to their first two items, all the way down."""
    if isinstance(value, list):
        return [_trim(v) for v in value[:2]]
    if isinstance(value, dict):
        return {k: _trim(v) for k, v in value.items()}
    return value


def _first_lines(text: str, count: int) -> str:
    return "".join(text.splitlines(keepends=True)[:count])


@pytest.fixture
async def demo(settings: Settings, admin_key: str, tmp_path: Path) -> AsyncIterator[Client]:
    """The app with a head-signing key and the demo seed imported."""
    key_file = tmp_path / "head.pem"
    key_file.write_bytes(SigningKey.generate().pem())
    app = create_app(settings.with_(signing_key_file=str(key_file)))
    async with AsyncTestClient(app=app, timeout=120) as client:
        client.headers["authorization"] = f"Bearer {admin_key}"
        seeded = await client.post(
            "/v1/events", content=SEED.read_bytes(), headers={"content-type": NDJSON}
        )
        assert seeded.status_code == 201, seeded.text
        yield client


async def test_the_examples_are_what_the_service_answers(demo: Client) -> None:
    """Each example's request, made of the demo seed, answers with the example's status and
    media type, an answer that fits the document's schema and has the example's fields (a
    changed answer fails here: ``make openapi-examples`` captures the examples again)."""
    document = await _document(demo)
    operations = _operations(document)
    stored = load_examples()
    captured: dict[str, dict[str, Any]] = {}
    for operation_id, status, media, method, url, accept in REQUESTS:
        headers = {"accept": accept} if accept else {}
        body: dict[str, Any] = {}
        if operation_id == "appendEvents":
            body = {"json": EVENT}
        elif operation_id == "importFile":
            body = {"content": ACLED.read_bytes()}
        elif operation_id == "registerSides":
            body = {"json": SIDE}
        elif operation_id == "registerSources":
            body = {"json": SOURCE}
        elif operation_id == "mergePlaces":
            body = {"json": MERGE}
        elif operation_id == "unmergePlaces":
            body = {"json": UNMERGE}
        answer = await demo.request(method, url, headers=headers, **body)
        where = (operation_id, status, media)
        assert str(answer.status_code) == status, (where, answer.text)
        assert answer.headers["content-type"].split(";")[0] == media.split(";")[0], where
        if media in JSON_TYPES:
            value: Any = _trim(answer.json())
            schema = operations[operation_id]["responses"][status]["content"][media]["schema"]
            errors = list(_validator(document, schema).iter_errors(value))
            assert not errors, (where, [str(e) for e in errors[:3]])
            if not WRITING:
                example = stored[operation_id]["answers"][status][media]
                assert set(value) == set(example), where
        else:
            value = _first_lines(answer.text, 12 if media == METRICS else 3)
            assert value.strip(), where
        entry = captured.setdefault(operation_id, {"request": f"{method} {url}", "answers": {}})
        entry["answers"].setdefault(status, {})[media] = value
    for operation_id, status, media in NOT_CAPTURED:
        entry = captured.setdefault(operation_id, dict(stored[operation_id], answers={}))
        entry["answers"].setdefault(status, {})[media] = stored[operation_id]["answers"][status][
            media
        ]
    assert set(captured) == set(operations)
    if WRITING:
        EXAMPLES_FILE.write_text(json.dumps(captured, indent=1, ensure_ascii=False) + "\n")
