"""Reading what the map page drew: its own account of each marker, its legend, its canvas."""

from __future__ import annotations

from typing import Any, Final

from playwright.sync_api import Page, expect

#: The colour of the canvas pixel at page coordinates (x, y), as #rrggbb.
PIXEL_JS: Final = """([x, y]) => {
  const canvas = document.querySelector('#map .leaflet-overlay-pane canvas');
  const rect = canvas.getBoundingClientRect();
  const scale = canvas.width / rect.width;
  const data = canvas.getContext('2d')
    .getImageData(Math.round((x - rect.left) * scale), Math.round((y - rect.top) * scale), 1, 1)
    .data;
  return '#' + [data[0], data[1], data[2]].map((v) => v.toString(16).padStart(2, '0')).join('');
}"""


def drawn(page: Page, place: str) -> dict[str, Any]:
    """How the page drew a place (it must be drawn)."""
    marker: dict[str, Any] | None = page.evaluate("(id) => window.frontline.drawn(id)", place)
    assert marker is not None, f"{place} is not drawn"
    return marker


def legend_color(page: Page, side: str) -> str:
    """The colour the legend shows for a side (the side must be in the legend)."""
    swatch = page.locator(f"#legend li[data-side='{side}'] .swatch")
    expect(swatch).to_have_count(1)
    color = swatch.get_attribute("data-color")
    assert color is not None
    return color


def pixel(page: Page, x: float, y: float) -> str:
    """The colour painted on the map's canvas at page coordinates."""
    color: str = page.evaluate(PIXEL_JS, [x, y])
    return color
