"""route_access: every spelling of a path gets the rule of the route a router sends it to."""

from __future__ import annotations

import pytest

from service.domain.access import route_access


@pytest.mark.parametrize(
    ("method", "path", "need"),
    [
        ("GET", "/health", "open"),
        ("GET", "/health/", "open"),
        ("GET", "//health", "open"),
        ("GET", "/schema/openapi.json", "open"),
        ("GET", "/v1/audit/head", "audit"),
        ("GET", "//v1/audit/head", "audit"),
        ("GET", "///v1/audit/head", "audit"),
        ("GET", "/v1//audit/head", "audit"),
        ("GET", "/v1/./audit/head", "audit"),
        ("GET", "/v1/events/../audit/head", "audit"),
        ("GET", "/v1/audit/head/", "audit"),
        ("GET", "/v1/export/", "audit"),
        ("POST", "/v1/admin//rebuild", "admin"),
        ("POST", "//v1/events", "ingest"),
        ("POST", "/v1/events/", "ingest"),
        ("GET", "/v1/events", "read"),
        ("GET", "/v1/state", "read"),
        ("DELETE", "/v1/events", "admin"),
        ("GET", "/", "admin"),  # closed until the map page opens it
        ("GET", "/anything", "admin"),
        ("GET", "/../v1/audit/head", "audit"),
    ],
)
def test_each_spelling_gets_its_routes_rule(method: str, path: str, need: str) -> None:
    assert route_access(method, path) == need
