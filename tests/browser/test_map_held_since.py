"""The place panel says since when the controller holds the place (``held_since``, DESIGN
section 4): in the reading at the valid time and beside each timeline segment's controller.
On the seed demo: ISIS holds Maskanah from its first report (06-02), the government from its
capture (06-03)."""

from __future__ import annotations

from typing import Final

from playwright.sync_api import expect

from tests.browser.conftest import MapPage

MASKANAH: Final = "sy-maskanah"


def test_the_panel_shows_since_when_the_controller_holds_the_place(map_page: MapPage) -> None:
    """On 06-05 Maskanah's reading says "held since 2017-06-03" and its timeline's rows say
    "Islamic State since 2017-06-02" and "Syrian government forces since 2017-06-03" (the
    sides' registry names; the government's disputed segment and the one from 06-07 alike:
    control did not change hands); on 06-02 the reading says ISIS's date."""
    page = map_page.page
    map_page.open(f"valid_at=2017-06-05&place={MASKANAH}")
    expect(page.locator("#place-name")).to_have_text("Maskanah")
    expect(page.locator("#held-since")).to_have_text("held since 2017-06-03")
    expect(page.locator("#place-reading")).to_contain_text("Syrian government forces, controlled")
    rows = page.locator("#timeline tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(1).locator(".held-since")).to_have_text("since 2017-06-02")
    expect(rows.nth(1)).to_contain_text("Islamic State since 2017-06-02")
    for row in (2, 3):
        expect(rows.nth(row).locator(".held-since")).to_have_text("since 2017-06-03")
        expect(rows.nth(row)).to_contain_text("Syrian government forces since 2017-06-03")

    map_page.open(f"valid_at=2017-06-02&place={MASKANAH}")
    expect(page.locator("#place-reading")).to_contain_text("Islamic State, encircled")
    expect(page.locator("#held-since")).to_have_text("held since 2017-06-02")
    assert map_page.console.errors == []


def test_a_place_no_side_holds_says_no_held_since(map_page: MapPage) -> None:
    """Tal Syriatel, contested with no controller on 06-05, has no held since in its reading
    or its timeline."""
    page = map_page.page
    map_page.open("valid_at=2017-06-05&place=sy-deir-ezzor-tal-syriatel")
    expect(page.locator("#place-reading")).to_contain_text("no controller")
    expect(page.locator("#held-since")).to_have_count(0)
    expect(page.locator("#timeline .held-since")).to_have_count(0)
    assert map_page.console.errors == []
