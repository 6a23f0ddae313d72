"""The map page's areas of control, compare mode, selection ring, slider dates and narrow
layout on the seed demo, in headless Chromium. Its own server: the last test
adds a report."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import KEY_STORE, MapPage, Site, serve_site
from tests.browser.reading import drawn, legend_color

MASKANAH: Final = "sy-maskanah"
ROUNDABOUT: Final = "sy-deir-ezzor-panorama-roundabout"
GOV: Final = "syrian-government"
SEED: Final = Path(__file__).resolve().parents[2] / "demo" / "seed.ndjson"
PHONE: Final = "map-390px.png"
HATCHED: Final = "map-areas-deir-ezzor.png"
#: Around Deir Ezzor, close enough for its places to be told apart.
DEIR_EZZOR_BOX: Final = "40.06,35.28,40.18,35.34"


@pytest.fixture(scope="module")
def site(server_url: str, template_url: str) -> Iterator[Site]:
    """The demo, served for this module alone (its last test changes the log)."""
    yield from serve_site(server_url)


def areas(map_page: MapPage) -> list[dict[str, Any]]:
    """The areas the page drew, as it accounts for them."""
    drawn_areas: list[dict[str, Any]] = map_page.page.evaluate("() => window.frontline.areas()")
    return drawn_areas


def rgb(color: str) -> tuple[int, int, int]:
    """#rrggbb as numbers."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def test_areas_are_drawn_under_the_places_coloured_by_controller(map_page: MapPage) -> None:
    """At 2017-06-05 the page draws the areas GET /v1/state/areas gives for its view, each
    filled with its controller's legend colour (Maskanah's ground in the government's), paler
    the lower its confidence, as SVG paths in the areas pane, below the places' canvas."""
    page = map_page.page
    map_page.open("valid_at=2017-06-05")
    page.wait_for_function("() => window.frontline.areas().length > 0")
    found = areas(map_page)
    (maskanah,) = [a for a in found if MASKANAH in a["places"]]
    assert maskanah["controller"] == GOV
    assert maskanah["fillColor"] == legend_color(page, GOV)
    for area in found:
        if area["controller"] is not None:
            assert area["fillColor"] == legend_color(page, area["controller"])
        assert 0.12 <= area["fillOpacity"] <= 0.5
    paths = page.locator("#map .leaflet-areas-pane path")
    assert paths.count() >= len(found)
    pane_z = page.evaluate(
        "() => [getComputedStyle(document.querySelector('.leaflet-areas-pane')).zIndex,"
        " getComputedStyle(document.querySelector('.leaflet-overlay-pane')).zIndex]"
    )
    assert int(pane_z[0]) < int(pane_z[1])
    # Unchecking "areas of control" removes them; the URL says so.
    page.uncheck("#areas-toggle")
    assert areas(map_page) == []
    assert "areas=off" in page.url
    assert map_page.console.errors == []


def test_no_side_colour_is_near_the_disputed_magenta(map_page: MapPage) -> None:
    """Every side the demo names is drawn in a colour far from the disputed ring's magenta
    (each channel's difference summed: over 150 of 765), and the sides' colours differ."""
    page = map_page.page
    map_page.open("valid_at=2017-06-05")
    disputed = rgb(page.evaluate("() => window.frontline.disputedColor"))
    sides = [GOV, "isis", "sdf", "us-coalition", "russia", "us-backed-opposition", "hts", "turkey"]
    colors = [page.evaluate("(side) => window.frontline.sideColor(side)", s) for s in sides]
    assert len(set(colors)) == len(colors)
    for side, color in zip(sides, colors, strict=True):
        distance = sum(abs(a - b) for a, b in zip(rgb(color), disputed, strict=True))
        assert distance > 150, (side, color)


def test_compare_mode_lists_maskanah_taken_by_the_government(map_page: MapPage) -> None:
    """Comparing 2017-06-01 with 2017-06-05 lists Maskanah (no report before, the government's
    after), among the places that changed, rings it on the map, and keeps `compare` in the
    URL; clicking the item opens Maskanah's panel, and the place is ringed as selected."""
    page = map_page.page
    map_page.open("valid_at=2017-06-05")
    page.fill("#compare-from", "2017-06-01")
    page.click("#compare-form button[type=submit]")
    item = page.locator(f"#compare-list li[data-place='{MASKANAH}']")
    expect(item).to_contain_text("Maskanah")
    expect(item).to_contain_text("no claim yet → Syrian government forces, controlled")
    expect(page.locator("#compare-summary")).to_contain_text(
        "changed from 2017-06-01 to 2017-06-05"
    )
    assert MASKANAH in page.evaluate("() => window.frontline.changedIds()")
    assert "compare=2017-06-01" in page.url
    item.click()
    expect(page.locator("#place-name")).to_have_text("Maskanah")
    selected = page.evaluate("() => window.frontline.selected()")
    assert selected is not None
    assert selected["id"] == MASKANAH
    assert selected["radius"] > drawn(page, MASKANAH)["radius"]
    page.click("#compare-clear")
    expect(page.locator("#compare-list li")).to_have_count(0)
    assert map_page.console.errors == []


def test_a_step_of_the_slider_loads_only_the_changes(map_page: MapPage) -> None:
    """Stepping the slider from 2017-06-05 back to 2017-06-02 and forward again asks
    /v1/state/changes (net) for each step, never the whole front again, and each day's places
    read exactly as when that day is opened afresh (Maskanah ISIS's again on 06-02)."""
    page = map_page.page
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    map_page.open("valid_at=2017-06-02")
    fresh_02 = page.evaluate("() => window.frontline.readings()")
    map_page.open("valid_at=2017-06-05")
    fresh_05 = page.evaluate("() => window.frontline.readings()")
    assert fresh_02 != fresh_05
    asked.clear()
    for day in ("2017-06-04", "2017-06-03", "2017-06-02"):
        page.click("#step-back")
        map_page.wait_loaded(day)
    assert page.evaluate("() => window.frontline.readings()") == fresh_02
    assert drawn(page, MASKANAH)["fillColor"] == legend_color(page, "isis")
    for day in ("2017-06-03", "2017-06-04", "2017-06-05"):
        page.click("#step-forward")
        map_page.wait_loaded(day)
    assert page.evaluate("() => window.frontline.readings()") == fresh_05
    assert page.evaluate("() => window.frontline.loads()") == {"full": 1, "steps": 6}
    fronts = [url for url in asked if "/v1/state?" in url]
    steps = [url for url in asked if "/v1/state/changes?" in url and "net=true" in url]
    assert fronts == []
    assert len(steps) >= 6
    assert map_page.console.errors == []


def test_the_slider_has_dates_under_it(map_page: MapPage) -> None:
    """The slider's first and last days (2017-05-29 and 2017-06-07, the demo's last report)
    are written under it, with tick marks."""
    page = map_page.page
    map_page.open("valid_at=2017-06-05")
    ticks = page.locator("#valid-ticks span")
    expect(ticks.first).to_have_text("05-29")
    expect(ticks.last).to_have_text("06-07")
    assert ticks.count() >= 2
    assert page.locator("#valid-marks option").count() == ticks.count()


def test_at_390_px_the_map_fills_the_width_and_the_panel_slides_over_it(
    browser: Browser, site: Site, screenshots: Path
) -> None:
    """On a phone-sized viewport (390 x 844) the map takes the whole width and most of the
    height, nothing overflows sideways, the panel is hidden until asked for; clicking
    Maskanah's marker opens it over the map with Maskanah's reading; the Panel button closes
    it. A screenshot is taken (docs/img/map-390px.png under ``make screenshots``)."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.add_init_script(f"localStorage.setItem({KEY_STORE!r}, {site.keys['read']!r})")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{site.url}/?valid_at=2017-06-05")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        box = page.locator("#map").bounding_box()
        assert box is not None
        assert box["width"] >= 380
        assert box["height"] >= 400
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        expect(page.locator("#side")).to_be_hidden()
        marker = drawn(page, MASKANAH)
        assert 0 <= marker["x"] <= 390
        page.mouse.click(marker["x"], marker["y"])
        expect(page.locator("#place-name")).to_have_text("Maskanah")
        expect(page.locator("#side")).to_be_visible()
        side = page.locator("#side").bounding_box()
        assert side is not None
        assert side["x"] >= 0
        assert side["x"] + side["width"] <= 391
        expect(page.locator("#panel-toggle")).to_have_attribute("aria-expanded", "true")
        page.screenshot(path=str(screenshots / PHONE))
        page.click("#panel-toggle")
        expect(page.locator("#side")).to_be_hidden()
        assert errors == []
    finally:
        context.close()


def test_a_disputed_area_is_hatched(map_page: MapPage, screenshots: Path) -> None:
    """After a Reuters report that the government holds the Panorama roundabout on 06-04 (the
    seed has ISIS capture it that week), the roundabout's area that day is marked disputed and
    drawn hatched with the disputed pattern. A screenshot is taken
    (docs/img/map-areas-deir-ezzor.png under ``make screenshots``)."""
    place: dict[str, Any] | None = None
    for line in SEED.read_text().splitlines():
        event = json.loads(line)
        if event["place"]["id"] == ROUNDABOUT:
            place = event["place"]
    assert place is not None
    report = {
        "id": str(uuid.uuid4()),
        "type": "control",
        "place": place,
        "side": GOV,
        "occurred": {"start": "2017-06-04", "precision": "day"},
        "source": {"name": "Reuters", "reliability": "B", "alignment": "neutral"},
        "credibility": 2,
        "hedge": "reported",
    }
    posted = map_page.site.post(report)
    assert posted.status_code == 201, posted.text
    page = map_page.page
    map_page.open(f"valid_at=2017-06-04&bbox={DEIR_EZZOR_BOX}")
    page.wait_for_function("() => window.frontline.areas().length > 0")
    (area,) = [a for a in areas(map_page) if ROUNDABOUT in a["places"]]
    assert (area["disputed"], area["hatched"]) == (True, True)
    hatched = page.locator("#map .leaflet-areas-pane path[fill='url(#hatch-disputed)']")
    assert hatched.count() >= 1
    page.screenshot(path=str(screenshots / HATCHED))
    assert map_page.console.errors == []
