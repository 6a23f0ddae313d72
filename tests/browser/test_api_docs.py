"""The API documentation pages (``/schema/swagger``, ``/schema/redoc``, ``/schema``) render in a
real browser with nothing but this server: every request to another host is refused, as on a
machine offline (issue 15: Swagger UI loaded its assets from a CDN and was blank offline)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.conftest import VIEWPORT, Console, Site


@pytest.fixture
def offline(browser: Browser, site: Site) -> Iterator[tuple[Page, Console, list[str]]]:
    """A page that reaches only the site; the addresses of other hosts it tried are listed."""
    context = browser.new_context(viewport=VIEWPORT)
    here = urlsplit(site.url).netloc
    elsewhere: list[str] = []

    def only_here(route: Route) -> None:
        url = route.request.url
        if url.startswith("data:") or urlsplit(url).netloc == here:
            route.continue_()
            return
        elsewhere.append(url)
        route.abort()

    context.route("**/*", only_here)
    page = context.new_page()
    console = Console()
    page.on("pageerror", console.exception)
    yield page, console, elsewhere
    context.close()


def test_swagger_ui_renders_the_document_offline(
    offline: tuple[Page, Console, list[str]], site: Site
) -> None:
    """Swagger UI draws the document's title and an operation by its id, and asks no other
    host for anything."""
    page, console, elsewhere = offline
    page.goto(f"{site.url}/schema/swagger")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Frontline")
    expect(page.locator("#operations-events-appendEvents")).to_be_visible()
    assert elsewhere == []
    assert console.errors == []


@pytest.mark.parametrize("path", ["/schema/redoc", "/schema"])
def test_redoc_renders_the_document_offline(
    offline: tuple[Page, Console, list[str]], site: Site, path: str
) -> None:
    """ReDoc draws the document's title and the problem catalogue of its description; the
    only other host it names is its footer's logo (refused here, as offline: a missing
    picture)."""
    page, console, elsewhere = offline
    page.goto(f"{site.url}{path}")
    expect(page.locator("h1").first).to_contain_text("Frontline")
    expect(page.get_by_text("unknown-parameter").first).to_be_attached()
    assert all(urlsplit(url).netloc == "cdn.redoc.ly" for url in elsewhere), elsewhere
    assert console.errors == []
