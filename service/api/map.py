"""The map page: ``/`` and its files under ``/map/``, shipped inside the package.

The page is plain HTML, CSS and one JavaScript file over vendored Leaflet and Natural Earth
boundaries (``service/api/static``, ``docs/map.md``); it reads the front through the public
API like any other client. No build step, no network beyond this server: the page's
Content-Security-Policy allows nothing else.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Final

from litestar import HttpMethod, Router, route
from litestar.params import PathParameter
from litestar.response import File

from service.errors import NotFound

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


SWAGGER_UI: Final = "swagger-ui-dist-5.36.0"
REDOC: Final = "redoc-2.5.4"
DOCS_ASSETS: Final = "/schema/assets"
"""The API documentation pages' vendored files (Swagger UI, ReDoc: ``scripts/docs-assets.sh``)
are served below this path, not below ``/map/``."""


def static_files() -> dict[str, Path]:
    """Every file of the page by its path under ``/map/`` (``vendor/leaflet-1.9.4/leaflet.js``)."""
    return {
        path.relative_to(STATIC).as_posix(): path
        for path in sorted(STATIC.rglob("*"))
        if path.is_file()
        and path.name != "index.html"
        and path.relative_to(STATIC).parts[:2] not in _DOCS_FOLDERS
    }


_DOCS_FOLDERS: Final = {("vendor", SWAGGER_UI), ("vendor", REDOC)}


def docs_files() -> dict[str, Path]:
    """The documentation pages' files by their path under DOCS_ASSETS
    (``swagger-ui-dist-5.36.0/swagger-ui.css``)."""
    return {
        path.relative_to(STATIC / "vendor").as_posix(): path
        for folder in sorted(_DOCS_FOLDERS)
        for path in sorted(STATIC.joinpath(*folder).rglob("*"))
        if path.is_file()
    }


def docs_assets() -> Router:
    """Swagger UI's and ReDoc's files under DOCS_ASSETS, so /schema/swagger and /schema/redoc
    work offline (looked up in a list made once, like the map's files)."""
    return _file_router(DOCS_ASSETS, docs_files(), "docs-assets", "the API documentation")


def map_assets() -> Router:
    """The page's script, styles, vendored libraries and boundaries, under ``/map/``.

    The files are listed once, when the app is built, and a request is answered by looking
    its path up in that list: a path is never joined to a folder nor handed to the file
    system, so no spelling (``..``, a NUL byte, a name too long for the file system, a
    folder) reaches anything but the listed files, and a miss is a plain 404 that names
    nothing of the server (Litestar's static router answered ``map.js%00`` with a 500 and
    ``vendor/`` with a 404 holding the folder's absolute path).
    """
    return _file_router("/map", static_files(), "map-assets", "the map")


def _file_router(prefix: str, files: dict[str, Path], name: str, owner: str) -> Router:
    """GET and HEAD of ``files`` by their names below ``prefix``; any other name, 404."""

    @route(
        "/{name:path}",
        http_method=[HttpMethod.GET, HttpMethod.HEAD],
        include_in_schema=False,
        name=name,
    )
    async def asset(name: Annotated[str, PathParameter()]) -> File:
        found = files.get(name.removeprefix("/"))
        if found is None:
            raise NotFound(f"{owner} has no file at this path", field="path")
        return File(path=found, filename=found.name, content_disposition_type="inline")

    return Router(path=prefix, route_handlers=[asset])
