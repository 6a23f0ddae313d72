"""The map page (issue 7): ``/`` and its files under ``/map/``, shipped inside the package.

The page is plain HTML, CSS and one JavaScript file over vendored Leaflet and Natural Earth
boundaries (``service/api/static``, ``docs/map.md``); it reads the front through the public
API like any other client. No build step, no network beyond this server: the page's
Content-Security-Policy allows nothing else.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

from litestar import HttpMethod, Router, route
from litestar.response import File
from litestar.static_files import create_static_files_router

STATIC: Final = Path(str(resources.files("service.api") / "static"))
"""The page's files: index.html, map.js, map.css, vendor/ and data/ (versions in the paths)."""

CSP: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
"""Only this server: a CDN or tile server slipped into the page would be refused."""

HEADERS: Final = {"content-security-policy": CSP, "x-content-type-options": "nosniff"}


@route("/", http_method=[HttpMethod.GET, HttpMethod.HEAD], include_in_schema=False, name="map-page")
async def map_page() -> File:
    """The map of the projected front (``?valid_at=&known_at=&bbox=`` carries the view)."""
    return File(
        path=STATIC / "index.html",
        content_disposition_type="inline",
        media_type="text/html",
        headers=HEADERS,
    )


def map_assets() -> Router:
    """The page's script, styles, vendored libraries and boundaries, under ``/map/``."""
    return create_static_files_router(
        path="/map", directories=[STATIC], name="map-assets", include_in_schema=False
    )
