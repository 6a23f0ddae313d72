"""route_access: every spelling of a path gets the rule of the route a router sends it to."""

from __future__ import annotations

import pytest

from service.api.access import route_access


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
        ("GET", "/", "open"),  # the map page
        ("HEAD", "/", "open"),
        ("GET", "//", "open"),
        ("GET", "/map/map.js", "open"),
        ("GET", "/map/vendor/leaflet-1.9.4/leaflet.js", "open"),
        ("HEAD", "/map/map.css", "open"),
        ("GET", "//map//map.js", "open"),
        ("GET", "/map/../v1/audit/head", "audit"),  # not a map file once resolved
        ("GET", "/map/../../v1/export", "audit"),
        ("GET", "/map/./../v1/state", "read"),
        ("POST", "/", "admin"),  # the page is read-only: other methods stay closed
        ("PUT", "/map/map.js", "admin"),
        ("DELETE", "/map/map.js", "admin"),
        ("GET", "/map", "admin"),  # only the files below /map/ are open
        ("GET", "/mapx/map.js", "admin"),
        ("GET", "/maps/map.js", "admin"),
        ("GET", "/v1/state/extent", "read"),
        ("GET", "/anything", "admin"),
        ("GET", "/../v1/audit/head", "audit"),
    ],
)
def test_each_spelling_gets_its_routes_rule(method: str, path: str, need: str) -> None:
    """A path spelled with doubled slashes, dot segments or a trailing slash gets the access
    rule of the route it resolves to, and a path or method no route has needs admin."""
    assert route_access(method, path) == need
