"""The map page names and colours sides from the side registry (GET /v1/sides, as known at the
view), on the seed demo in headless Chromium. Its own server: the last test edits the
registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import MapPage, Site, serve_site
from tests.browser.reading import drawn, legend_color

MASKANAH: Final = "sy-maskanah"
GOV: Final = "syrian-government"
GOV_NAME: Final = "Syrian government forces"
MAGENTA: Final = "#d100d1"


@pytest.fixture(scope="module")
def site(server_url: str, template_url: str) -> Iterator[Site]:
    """The demo, served for this module alone (its last test edits the side registry)."""
    yield from serve_site(server_url)


def registry(site: Site, known_at: str | None = None) -> dict[str, Any]:
    """GET /v1/sides with the read key the page holds."""
    answer = httpx.get(
        f"{site.url}/v1/sides",
        params={"known_at": known_at} if known_at else {},
        headers={"authorization": f"Bearer {site.keys['read']}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


def entry(page: dict[str, Any], side: str) -> dict[str, Any]:
    """One side's entry of a registry page."""
    found: list[dict[str, Any]] = [s for s in page["sides"] if s["side"] == side]
    assert len(found) == 1, side
    return found[0]


def rgb(color: str) -> tuple[int, int, int]:
    """#rrggbb as numbers."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def distance(a: str, b: str) -> int:
    """Each channel's difference, summed (0..765)."""
    return sum(abs(x - y) for x, y in zip(rgb(a), rgb(b), strict=True))


def test_the_legend_and_the_panel_use_the_registrys_names_and_colours(map_page: MapPage) -> None:
    """At 2017-06-05 the legend names the government "Syrian government forces" (the demo
    registry's display name) instead of its id, with the registry's colour; Maskanah's marker
    is filled with that colour; its tooltip and its panel's reading name the side the same way;
    a side the registry does not know keeps its id and a colour of the page's palette; the
    disputed ring stays magenta, far from every registered colour."""
    page = map_page.page
    gov = entry(registry(map_page.site), GOV)
    assert gov["name"] == GOV_NAME
    map_page.open("valid_at=2017-06-05")
    item = page.locator(f"#legend li[data-side='{GOV}']")
    expect(item.locator(".side-name")).to_have_text(GOV_NAME)
    expect(item).not_to_contain_text(GOV)
    expect(page.locator("#legend li[data-side='isis'] .side-name")).to_have_text("Islamic State")
    assert legend_color(page, GOV) == gov["colour"]
    marker = drawn(page, MASKANAH)
    assert marker["fillColor"] == gov["colour"]
    page.mouse.move(marker["x"], marker["y"])
    expect(page.locator(".leaflet-tooltip")).to_contain_text(f"Maskanah: {GOV_NAME}, controlled")
    page.mouse.click(marker["x"], marker["y"])
    expect(page.locator("#place-name")).to_have_text("Maskanah")
    expect(page.locator("#place-reading")).to_contain_text(f"{GOV_NAME}, controlled")
    expect(page.locator("#place-reading")).not_to_contain_text(GOV)
    assert page.evaluate("() => window.frontline.sideName('no-such-side')") == "no-such-side"
    palette = page.evaluate("() => window.frontline.sideColor('no-such-side')")
    assert palette not in {s["colour"] for s in registry(map_page.site)["sides"]}
    assert page.evaluate("() => window.frontline.disputedColor") == MAGENTA
    assert map_page.console.errors == []


def test_a_registry_edit_recolours_the_map_and_the_disputed_ring_moves_aside(
    map_page: MapPage,
) -> None:
    """An editor renames the government and gives it the disputed ring's own magenta: the map
    (latest) draws Maskanah in that magenta and names the side anew in the legend, and the
    disputed ring, its legend sample and the areas' hatching take another colour, far from
    every side's; as known before the edit, the map shows the old name, the old colour and the
    magenta ring (the registry is read as known at the view)."""
    page = map_page.page
    site = map_page.site
    before = registry(site)
    gov = entry(before, GOV)
    edited = {
        "side": GOV,
        "name": "Government of Syria (renamed)",
        "kind": gov["kind"],
        "colour": MAGENTA,
        "aliases": list(gov["aliases"]),
    }
    answer = httpx.post(
        f"{site.url}/v1/sides",
        json={"sides": [edited]},
        headers={"authorization": f"Bearer {site.keys['editor']}"},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    map_page.open("valid_at=2017-06-05")
    expect(page.locator(f"#legend li[data-side='{GOV}'] .side-name")).to_have_text(
        "Government of Syria (renamed)"
    )
    assert legend_color(page, GOV) == MAGENTA
    assert drawn(page, MASKANAH)["fillColor"] == MAGENTA
    ring = page.evaluate("() => window.frontline.disputedColor")
    assert ring != MAGENTA
    for side in registry(site)["sides"]:
        colour = page.evaluate("(s) => window.frontline.sideColor(s)", side["side"])
        assert distance(colour, ring) >= 150, (side["side"], colour, ring)
    sample = page.evaluate(
        "() => getComputedStyle(document.querySelector('.ring.disputed')).borderTopColor"
    )
    assert sample == "rgb({}, {}, {})".format(*rgb(ring))
    hatch = page.evaluate(
        "() => document.querySelector('#hatch-disputed line').getAttribute('stroke')"
    )
    assert hatch == ring

    map_page.open(f"valid_at=2017-06-05&known_at=position:{before['known_position']}")
    expect(page.locator(f"#legend li[data-side='{GOV}'] .side-name")).to_have_text(GOV_NAME)
    assert legend_color(page, GOV) == gov["colour"]
    assert drawn(page, MASKANAH)["fillColor"] == gov["colour"]
    assert page.evaluate("() => window.frontline.disputedColor") == MAGENTA
    assert map_page.console.errors == []
