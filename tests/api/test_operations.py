"""Health, readiness, the OpenAPI document, request logs and request ids."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from service.app import create_app
from service.settings import Settings
from service.store.migrate import head_revision
from tests.api.conftest import assert_problem
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]


async def test_health_and_ready(client: Client) -> None:
    """/health answers; /ready says the database answers and the schema is at head."""
    assert (await client.get("/health")).json()["status"] == "ok"
    ready = (await client.get("/ready")).json()
    assert ready["status"] == "ready"
    assert ready["migration"] == head_revision()


async def test_openapi_documents_every_endpoint_and_the_contract(client: Client) -> None:
    """/schema lists each route, the event contract and the problem answers."""
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path in ("/v1/events", "/v1/events/{event_id}", "/health", "/ready"):
        assert path in paths, path
    post = paths["/v1/events"]["post"]
    bodies = post["requestBody"]["content"]
    assert {"application/json", "application/x-ndjson"} <= set(bodies)
    for status in ("201", "200", "400", "409", "413", "422"):
        assert status in post["responses"], status
    for path in (
        "/v1/events/stream",
        "/v1/audit/head",
        "/v1/audit/key",
        "/v1/audit/verify",
        "/v1/export",
        "/v1/places/{place_id}/history",
    ):
        assert "get" in paths.get(path, {}), path
    stream = {p["name"]: p["in"] for p in paths["/v1/events/stream"]["get"]["parameters"]}
    assert stream["last-event-id"] == "header"
    assert "304" in paths["/v1/export"]["get"]["responses"]
    assert "304" in paths["/v1/state"]["get"]["responses"]
    assert "422" in paths["/v1/audit/verify"]["get"]["responses"]
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in paths.items():
        for method, operation in operations.items():
            keyed = path.startswith("/v1/")
            for status in ("401", "403", "429"):
                assert (status in operation["responses"]) == keyed, (method, path, status)
            assert ("security" in operation) == keyed, (method, path)
    components = schema["components"]["schemas"]
    assert "Event" in components
    assert "Capture" in components
    assert "Problem" in components


async def test_one_log_line_per_request_with_a_request_id(client: Client) -> None:
    """Each request: one 'request' line with id, method, path, status and duration."""
    with capture_logs() as logs:
        response = await client.post("/v1/events", json=event_json())
    lines = [line for line in logs if line["event"] == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "POST"
    assert line["path"] == "/v1/events"
    assert line["status"] == 201
    assert line["duration_ms"] >= 0
    assert line["request_id"] == response.headers["x-request-id"]


async def test_client_request_id_is_kept(client: Client) -> None:
    """A sane X-Request-ID from the client is used and echoed; problems carry it too."""
    response = await client.get("/v1/events/nope", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert assert_problem(response, 422)["request_id"] == "abc-123"


async def test_unknown_route_is_a_404_problem(client: Client) -> None:
    """Routes that do not exist answer with a problem body too."""
    assert_problem(await client.get("/v2/nothing"), 404)


async def test_wrong_method_is_a_405_problem(client: Client) -> None:
    """A method a route does not take answers with a problem body."""
    assert_problem(await client.delete("/v1/events"), 405)


async def test_unknown_routes_are_logged_with_a_request_id(client: Client) -> None:
    """Requests that match no route still get a request id and their log line."""
    with capture_logs() as logs:
        response = await client.get("/v2/nothing")
    assert response.headers["x-request-id"]
    (line,) = [line for line in logs if line["event"] == "request"]
    assert line["status"] == 404
    assert line["request_id"] == response.headers["x-request-id"]


async def test_ready_says_when_the_projections_lag_the_log(
    admin_key: str, settings: Settings
) -> None:
    """Events appended with projections off: /ready is 503 until a rebuild catches up (here
    by hand: the service is told not to rebuild stale projections at start-up)."""
    async with AsyncTestClient(app=create_app(settings.with_(projections=False))) as off:
        off.headers["authorization"] = f"Bearer {admin_key}"
        assert (await off.post("/v1/events", json=event_json())).status_code == 201
    async with AsyncTestClient(app=create_app(settings.with_(rebuild_stale=False))) as on:
        on.headers["authorization"] = f"Bearer {admin_key}"
        body = assert_problem(await on.get("/ready"), 503)
        assert "frontline rebuild" in body["detail"]
        rebuilt = await on.post("/v1/admin/rebuild")
        assert rebuilt.status_code == 200
        assert rebuilt.json()["position"] == 1
        assert (await on.get("/ready")).status_code == 200
        page = (await on.get("/v1/state", params={"valid_at": "2017-06-04"})).json()
        assert [item["place"]["id"] for item in page["items"]] == ["sy-maskanah"]
