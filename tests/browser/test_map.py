"""The map page on the seed demo, in headless Chromium.

What is drawn is read two ways: from the page's own account of each marker
(``window.frontline.drawn``) and from the pixels of the map's canvas, so a marker that the
code says is ISIS-coloured but is painted otherwise fails too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import KEY_STORE, VIEWPORT, MapPage, Site
from tests.browser.reading import drawn, legend_color, pixel

MASKANAH: Final = "sy-maskanah"
RAQQA: Final = "sy-raqqa"
N4: Final = "sy-n4-highway-maskanah"
SCREENSHOT: Final = "map-2017-06-05.png"
"""The README's picture of the demo (docs/img/ under ``make screenshots``)."""


def test_maskanah_is_isis_and_encircled_on_06_02_then_government_on_06_05(
    map_page: MapPage,
) -> None:
    """At 2017-06-02 Maskanah is filled with ISIS's legend colour inside a thick ring of the
    encircling government's colour; three steps of the slider later (2017-06-05) it is filled
    with the government's colour, controlled, and the URL says 2017-06-05."""
    page = map_page.page
    map_page.open("valid_at=2017-06-02")
    isis, government = legend_color(page, "isis"), legend_color(page, "syrian-government")
    assert isis != government
    before = drawn(page, MASKANAH)
    assert (before["fillColor"], before["status"]) == (isis, "encircled")
    assert before["color"] == government
    assert before["weight"] >= 3
    assert pixel(page, before["x"], before["y"]) == isis
    ring = before["radius"]  # the stroke is centred on the circle's edge
    assert pixel(page, before["x"] + ring, before["y"]) == government

    page.focus("#valid-slider")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    map_page.wait_loaded("2017-06-05")
    expect(page.locator("#valid-label")).to_have_text("2017-06-05")
    after = drawn(page, MASKANAH)
    assert (after["fillColor"], after["status"]) == (government, "controlled")
    assert pixel(page, after["x"], after["y"]) == government
    assert parse_qs(urlsplit(page.url).query)["valid_at"] == ["2017-06-05"]
    assert map_page.console.errors == []


def test_the_day_buttons_and_the_slider_stay_within_the_logs_days(map_page: MapPage) -> None:
    """The slider runs from the earliest event's first day (2017-05-29, the week of the undated
    reports) to the latest event's last day (2017-06-07, the demo's last report: the monitor
    on Maskanah); stepping past either end stays."""
    page = map_page.page
    map_page.open("valid_at=2017-06-07")
    page.click("#step-forward")
    map_page.wait_loaded("2017-06-07")
    expect(page.locator("#valid-label")).to_have_text("2017-06-07")
    page.focus("#valid-slider")
    page.keyboard.press("Home")
    map_page.wait_loaded("2017-05-29")
    page.click("#step-back")
    map_page.wait_loaded("2017-05-29")
    page.click("#step-forward")
    map_page.wait_loaded("2017-05-30")
    expect(page.locator("#valid-label")).to_have_text("2017-05-30")
    assert map_page.console.errors == []


def test_places_without_a_point_are_listed_and_open_their_panel(map_page: MapPage) -> None:
    """The N4 highway section has no point: it is in the side list, not dropped, and clicking
    it opens its panel with its timeline."""
    page = map_page.page
    map_page.open("valid_at=2017-06-05")
    item = page.locator(f"#unlocated li[data-place='{N4}']")
    expect(item).to_contain_text("N4 highway")
    item.click()
    expect(page.locator("#place-name")).to_have_text("N4 highway at Maskanah")
    expect(page.locator("#place")).to_contain_text("no point")
    expect(page.locator("#timeline tr")).not_to_have_count(1)  # a header and segments
    assert map_page.console.errors == []


def test_clicking_a_marker_shows_timeline_events_history_and_raw_event(
    map_page: MapPage,
) -> None:
    """Hovering Maskanah's marker names its reading; a click opens its panel: the timeline's
    three segments (ISIS encircled, then the government, disputed by ISIS's denial until the
    monitor's report of 06-07), the events with their sources, the commit history, and an
    event's raw JSON from /v1/events/{id} when its link is followed."""
    page = map_page.page
    map_page.open("valid_at=2017-06-02")
    marker = drawn(page, MASKANAH)
    page.mouse.move(marker["x"], marker["y"])
    expect(page.locator(".leaflet-tooltip")).to_contain_text(
        "Maskanah: Islamic State, encircled by Syrian government forces"
    )
    page.mouse.click(marker["x"], marker["y"])
    expect(page.locator("#place-name")).to_have_text("Maskanah")
    rows = page.locator("#timeline tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(1)).to_contain_text("Islamic State")
    expect(rows.nth(1)).to_contain_text("encircled (Syrian government forces)")
    expect(rows.nth(2)).to_contain_text("Syrian government forces")
    expect(rows.nth(3)).to_contain_text("Syrian government forces")
    # The header, the article's four events and the three of the days after it.
    expect(page.locator("#events tr")).to_have_count(8)
    expect(page.locator("#events")).to_contain_text("South Front")
    expect(page.locator("#events")).to_contain_text("Syria monitor (demo)")
    expect(page.locator("#history > li")).not_to_have_count(0)
    link = page.locator("#events a[data-event]").first
    event_id = link.get_attribute("data-event")
    assert link.get_attribute("href") == f"/v1/events/{event_id}"
    link.click()
    expect(page.locator("#raw-event pre")).to_contain_text(f'"id": "{event_id}"')
    assert map_page.console.errors == []


def test_filters_by_side_status_and_disputed(map_page: MapPage) -> None:
    """Unticking ISIS in the legend hides Raqqa (ISIS) and keeps Maskanah (government) at
    2017-06-05; unticking `controlled` hides Maskanah; `only disputed` draws no undisputed
    place; every filter is in the URL."""
    page = map_page.page
    map_page.open("valid_at=2017-06-05")
    drawn(page, RAQQA)
    page.uncheck("#legend input[data-side='isis']")
    assert page.evaluate("(id) => window.frontline.drawn(id)", RAQQA) is None
    drawn(page, MASKANAH)
    assert parse_qs(urlsplit(page.url).query)["side"] != []
    page.uncheck("#status-filter input[data-status='controlled']")
    assert page.evaluate("(id) => window.frontline.drawn(id)", MASKANAH) is None
    page.check("#legend input[data-side='isis']")
    page.check("#status-filter input[data-status='controlled']")
    drawn(page, RAQQA)
    page.select_option("#disputed-filter", "true")
    for place in page.evaluate("window.frontline.drawnIds()"):
        assert drawn(page, place)["disputed"] is True
    assert parse_qs(urlsplit(page.url).query)["disputed"] == ["true"]
    assert map_page.console.errors == []


def test_search_finds_places_by_name_and_alias(map_page: MapPage) -> None:
    """`Meskene` is an alias of Maskanah: the search lists Maskanah and a click opens it;
    a name matching nothing says so."""
    page = map_page.page
    map_page.open("valid_at=2017-06-05")
    page.fill("#search", "Meskene")
    hit = page.locator(f"#search-results li[data-place='{MASKANAH}']")
    expect(hit).to_contain_text("Maskanah")
    hit.click()
    expect(page.locator("#place-name")).to_have_text("Maskanah")
    page.fill("#search", "no such place anywhere")
    expect(page.locator("#search-results")).to_contain_text("no place at this time")
    assert map_page.console.errors == []


def test_a_shared_url_reopens_the_same_view(map_page: MapPage, browser: Browser) -> None:
    """A view (valid time moved by the slider, as known at position 30, a status filter, a
    place found by search, the map zoomed onto it) shared as its URL opens in another browser
    at the same URL, the same day and known position, the same filter, the same place panel,
    the same zoom and the same markers."""
    page = map_page.page
    map_page.open("valid_at=2017-06-02&known_at=position:30")
    page.focus("#valid-slider")
    page.keyboard.press("ArrowRight")
    map_page.wait_loaded("2017-06-03")
    page.uncheck("#status-filter input[data-status='unknown']")
    page.fill("#search", "Panorama roundabout")
    page.click("#search-results li[data-place='sy-deir-ezzor-panorama-roundabout']")
    expect(page.locator("#place-name")).to_have_text("Panorama roundabout")
    shared = page.url
    query = parse_qs(urlsplit(shared).query)
    assert query["valid_at"] == ["2017-06-03"]
    assert query["known_at"] == ["position:30"]
    assert query["place"] == ["sy-deir-ezzor-panorama-roundabout"]
    assert len(query["bbox"][0].split(",")) == 4
    seen = _view(page)

    context = browser.new_context(viewport=VIEWPORT)
    try:
        key = map_page.site.keys["read"]
        context.add_init_script(f"localStorage.setItem({KEY_STORE!r}, {key!r})")
        other = context.new_page()
        other.goto(shared)
        other.wait_for_selector("body[data-ready=true]", timeout=30_000)
        expect(other.locator("#place-name")).to_have_text("Panorama roundabout")
        assert other.url == shared
        reopened = _view(other)
        center, center_again = seen.pop("center"), reopened.pop("center")
        assert reopened == seen
        # The same centre, to within a pixel (the URL's box has 4 decimals).
        pixel_degrees = 360 / (256 * 2 ** seen["zoom"])
        assert abs(center[0] - center_again[0]) <= pixel_degrees
        assert abs(center[1] - center_again[1]) <= pixel_degrees
    finally:
        context.close()
    assert map_page.console.errors == []


def _view(page: Page) -> dict[str, Any]:
    view: dict[str, Any] = page.evaluate(
        """() => ({
          day: document.getElementById('valid-label').textContent,
          known: document.getElementById('known-at').value,
          unknownShown: document.querySelector("input[data-status='unknown']").checked,
          zoom: window.frontline.map.getZoom(),
          drawn: window.frontline.drawnIds(),
        })"""
    )
    center = page.evaluate("(() => window.frontline.map.getCenter())()")
    view["center"] = (center["lat"], center["lng"])
    return view


def test_as_known_at_before_any_report_shows_no_place(map_page: MapPage) -> None:
    """As known at a date before the seed was recorded the log held nothing: no place is
    drawn or listed, the page says 0 places, and nothing errs; *Latest* brings the front back."""
    page = map_page.page
    map_page.open("valid_at=2017-06-05&known_at=2000-01-01")
    map_page.wait_loaded("2017-06-05", "2000-01-01")
    assert page.evaluate("window.frontline.loaded()") == 0
    expect(page.locator("#status-line")).to_contain_text("0 places")
    expect(page.locator("#known-at")).to_have_value("2000-01-01")
    expect(page.locator("#unlocated li")).to_have_count(0)
    page.click("#known-latest")
    map_page.wait_loaded("2017-06-05", "")
    drawn(page, MASKANAH)
    assert "known_at" not in parse_qs(urlsplit(page.url).query)
    assert map_page.console.errors == []


def test_play_steps_day_by_day_without_console_errors(map_page: MapPage) -> None:
    """Play moves the slider a day at a time and pause stops it; through loading, playing,
    clicking, searching and filtering the console shows no error and no uncaught exception."""
    page = map_page.page
    map_page.open("valid_at=2017-06-01")
    page.click("#play")
    map_page.wait_loaded("2017-06-02")
    map_page.wait_loaded("2017-06-03")
    page.click("#play")
    expect(page.locator("#play")).to_have_text("Play")
    day = page.locator("#valid-label").text_content()
    page.wait_for_timeout(1500)
    expect(page.locator("#valid-label")).to_have_text(day or "")
    marker = drawn(page, MASKANAH)
    page.mouse.click(marker["x"], marker["y"])
    expect(page.locator("#place-name")).to_have_text("Maskanah")
    page.fill("#search", "raq")
    page.select_option("#disputed-filter", "false")
    page.click("#known-latest")
    map_page.wait_ready()
    assert map_page.console.errors == []


def test_without_a_stored_key_the_page_asks_for_one(browser: Browser, site: Site) -> None:
    """Reads need a key on this server: the page opens a dialog instead of breaking, says
    when a pasted key is refused, and with a read key draws the front and keeps the key."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/?valid_at=2017-06-05")
        dialog = page.locator("#key-dialog")
        expect(dialog).to_be_visible()
        page.fill("#key-input", "flk_not_a_key")
        page.click("#key-submit")
        expect(page.locator("#key-error")).to_contain_text("refused")
        expect(dialog).to_be_visible()
        page.fill("#key-input", site.keys["read"])
        page.click("#key-submit")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        expect(dialog).to_be_hidden()
        assert page.evaluate("(k) => localStorage.getItem(k)", KEY_STORE) == site.keys["read"]
        drawn(page, MASKANAH)
    finally:
        context.close()


def test_the_page_and_its_files_come_from_this_server_only(map_page: MapPage) -> None:
    """Every request the page makes goes to the Frontline server itself (no CDN, no tiles),
    and the page forbids anything else with its Content-Security-Policy."""
    page = map_page.page
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    response = page.goto(f"{map_page.site.url}/?valid_at=2017-06-05")
    map_page.wait_ready()
    assert response is not None
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert urls
    outside = [u for u in urls if not u.startswith(map_page.site.url + "/")]
    assert outside == []
    assert map_page.console.errors == []


@pytest.mark.slow
def test_screenshot_of_the_demo_on_06_05(map_page: MapPage, screenshots: Path) -> None:
    """The picture of the seed demo at 2017-06-05 that README.md shows (docs/img/, rewritten
    by ``make screenshots``), with Maskanah's panel open: taken by this test, so it shows the
    page as it is."""
    page = map_page.page
    map_page.open("valid_at=2017-06-05&place=sy-maskanah")
    expect(page.locator("#place-name")).to_have_text("Maskanah")
    page.mouse.move(0, 0)
    picture = screenshots / SCREENSHOT
    page.screenshot(path=str(picture))
    assert picture.stat().st_size > 10_000
    assert map_page.console.errors == []
