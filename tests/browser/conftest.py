"""The map page in a real browser: Debian's headless Chromium driven by Playwright for Python,
against a real ``frontline serve`` (uvicorn) on a free port, on the test PostgreSQL, with the
seed demo loaded by ``serve --demo``.

Anonymous reads are off on that server (as with ``DATABASE_URL`` in production), so the page
must send a key: the ``page`` fixture's browser context holds a read key in local storage, as a
user who pasted it once would; ``tests/browser/test_map.py`` also walks the paste itself.

Chromium is ``FRONTLINE_CHROMIUM`` or ``chromium`` on the PATH (``make chromium`` installs
Debian's package); Playwright never downloads a browser here.

The tests that take the docs' screenshots write them into the test's temp folder, so a test
run leaves the work tree as it found it; ``FRONTLINE_SCREENSHOTS=docs/img`` (what ``make
screenshots`` sets) writes them over the docs' images instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import asyncpg
import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)

from bench.servers import ServerProcess, free_port
from service.roles import Role, key_hash, new_key
from tests.conftest import TEMPLATE, with_database

T = TypeVar("T")

# Assertions on the page wait up to 20 s (Playwright's default is 5): a loaded 2-core CI
# machine may take longer than 5 s to fetch and draw, and a wait ends as soon as it holds.
expect.set_options(timeout=20_000)

KEY_STORE: Final = "frontline.key"
ROOT: Final = Path(__file__).resolve().parents[2]
VIEWPORT: Final = ViewportSize(width=1400, height=850)


def chromium_path() -> str:
    """The Chromium binary the tests drive; a clear failure when there is none."""
    found = os.environ.get("FRONTLINE_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail(
            "no chromium: `make chromium` installs Debian's package "
            "(or set FRONTLINE_CHROMIUM to a Chromium binary)"
        )
    return found


@dataclass
class Site:
    """A running ``frontline serve`` with the demo loaded, and keys to talk to it."""

    url: str
    database: str
    keys: dict[str, str]

    def post(self, body: object) -> httpx.Response:
        """POST to /v1/events with the ingest key."""
        return httpx.post(
            f"{self.url}/v1/events",
            json=body,
            headers={"authorization": f"Bearer {self.keys['ingest']}"},
            timeout=60,
        )


async def _make_database(server_url: str, name: str, keys: dict[str, str]) -> str:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await admin.close()
    url = with_database(server_url, name)
    conn = await asyncpg.connect(url)
    try:
        for role, key in keys.items():
            await conn.execute(
                "INSERT INTO api_keys (id, name, role, key_hash) VALUES ($1, $2, $3, $4)",
                uuid.uuid4(),
                f"browser-{role}",
                role,
                key_hash(key),
            )
    finally:
        await conn.close()
    return url


async def _drop_database(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end in a thread of its own: Playwright's sync API keeps an event
    loop running in this one, where ``asyncio.run`` refuses to start."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def serve_site(server_url: str, *, demo: bool = True) -> Iterator[Site]:
    """Start ``frontline serve`` on a fresh database cloned from the migrated template."""
    name = "frontline_b_" + uuid.uuid4().hex[:12]
    roles: tuple[Role, ...] = ("read", "ingest", "editor")
    # Keys as Frontline mints them: a longer one is refused unread (issue 13).
    keys: dict[str, str] = {role: new_key() for role in roles}
    database = _run(_make_database(server_url, name, keys))
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="frontline-browser-") as folder:
        command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
        service = ServerProcess(
            name="frontline",
            command=[*command, "--demo"] if demo else command,
            env={
                "DATABASE_URL": database,
                "FRONTLINE_ANONYMOUS_READS": "false",
                "FRONTLINE_LOG_FORMAT": "json",
            },
            log_path=Path(folder) / "service.log",
            port=port,
            ready_path="/ready",
        )
        service.start()
        try:
            yield Site(url=f"http://127.0.0.1:{port}", database=database, keys=keys)
        finally:
            service.stop()
            _run(_drop_database(server_url, name))


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """The folder the screenshots go to: ``FRONTLINE_SCREENSHOTS`` (relative to the
    repository's root; ``docs/img`` regenerates the docs' pictures), else the test's temp
    folder."""
    chosen = os.environ.get("FRONTLINE_SCREENSHOTS")
    folder = ROOT / chosen if chosen else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def site(server_url: str, template_url: str) -> Iterator[Site]:
    """The demo, served for the tests of one module (template_url: migrated first)."""
    yield from serve_site(server_url)


@pytest.fixture(scope="module")
def playwright(template_url: str) -> Iterator[Playwright]:
    """Playwright's driver, for one module: it keeps an event loop running in the main thread,
    which the session's ``asyncio.run`` fixtures (the template first) must not meet."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    launched = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
    yield launched
    launched.close()


@dataclass
class Console:
    """What the page said on its console, and the exceptions it did not catch."""

    errors: list[str] = field(default_factory=list)

    def message(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            self.errors.append(f"console.{message.type}: {message.text} at {message.location}")

    def exception(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")


@dataclass
class MapPage:
    """A browser page on the map, with a read key stored, and its console."""

    page: Page
    console: Console
    site: Site

    def open(self, query: str = "") -> None:
        """Open ``/?query`` and wait until the page has drawn the front."""
        self.page.goto(f"{self.site.url}/{'?' + query if query else ''}")
        self.wait_ready()

    def wait_ready(self) -> None:
        """Until the first load is drawn."""
        self.page.wait_for_selector("body[data-ready=true]", timeout=30_000)

    def wait_loaded(self, valid_at: str, known_at: str | None = None) -> None:
        """Until the front at ``valid_at`` (as known at ``known_at``, if given) is drawn."""
        if known_at is None:
            selector = f"body[data-loaded^='{valid_at}|']"
        else:
            selector = f"body[data-loaded='{valid_at}|{known_at}']"
        self.page.wait_for_selector(selector, timeout=30_000)


@pytest.fixture
def map_page(browser: Browser, site: Site) -> Iterator[MapPage]:
    """A fresh browser context holding the read key, on the demo's site."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(f"localStorage.setItem({KEY_STORE!r}, {site.keys['read']!r})")
    page = context.new_page()
    console = Console()
    page.on("console", console.message)
    page.on("pageerror", console.exception)
    yield MapPage(page=page, console=console, site=site)
    context.close()
