"""A contradicting report on the map: the Panorama roundabout, which the article has ISIS
capture in the week of 2017-06-03, is reported held by the government on 2017-06-04 by the
demo's neutral monitor (demo/followups.ndjson), published two days later."""

from __future__ import annotations

from typing import Final

import httpx
from playwright.sync_api import expect

from tests.browser.conftest import MapPage
from tests.browser.reading import drawn, legend_color

ROUNDABOUT: Final = "sy-deir-ezzor-panorama-roundabout"
MONITOR: Final = "Syria monitor (demo)"
#: Around Deir Ezzor, close enough for its places to be clicked apart.
DEIR_EZZOR_BOX: Final = "40.06,35.28,40.18,35.34"


def test_clicking_a_contradicted_place_lists_both_claims(map_page: MapPage) -> None:
    """The demo's monitor (B, neutral) reports, on its third day, government troops at the
    roundabout on 2017-06-04, against South Front's ISIS capture that week: the map at that
    day marks the roundabout disputed; clicking its marker lists the two competing claims
    (ISIS by South Front, C, reported; the government by the monitor, B, reported) with their
    scores, as /v1/disputes has them, and why the winner won. As known at the article's
    commit (position 30) the same day shows the roundabout undisputed, ISIS's."""
    disputes = httpx.get(
        f"{map_page.site.url}/v1/disputes",
        params={"valid_at": "2017-06-04"},
        headers={"authorization": f"Bearer {map_page.site.keys['read']}"},
    ).json()
    (item,) = [i for i in disputes["items"] if i["place"]["id"] == ROUNDABOUT]
    claims = {(c["side"], c["source"]): c["score"] for c in item["segment"]["claims"]}
    assert set(claims) == {("isis", "South Front"), ("syrian-government", MONITOR)}

    page = map_page.page
    map_page.open(f"valid_at=2017-06-04&bbox={DEIR_EZZOR_BOX}")
    marker = drawn(page, ROUNDABOUT)
    assert marker["disputed"] is True
    winner = item["segment"]["controller"]
    assert marker["fillColor"] == legend_color(page, winner)
    page.mouse.click(marker["x"], marker["y"])
    expect(page.locator("#place-name")).to_have_text("Panorama roundabout")
    rows = page.locator("#claims tr[data-side]")
    expect(rows).to_have_count(2)
    isis = page.locator("#claims tr[data-side='isis']")
    expect(isis).to_contain_text("South Front")
    expect(isis.locator("td").nth(2)).to_have_text("C")
    expect(isis.locator("td").nth(3)).to_have_text("reported")
    expect(isis.locator("td").nth(4)).to_have_text(f"{claims[('isis', 'South Front')]:.3f}")
    government = page.locator("#claims tr[data-side='syrian-government']")
    expect(government).to_contain_text(MONITOR)
    expect(government.locator("td").nth(2)).to_have_text("B")
    score = claims[("syrian-government", MONITOR)]
    expect(government.locator("td").nth(4)).to_have_text(f"{score:.3f}")
    expect(page.locator("#reason")).to_contain_text(item["segment"]["reason"])
    expect(page.locator("#place-reading")).to_contain_text("disputed")
    assert map_page.console.errors == []

    # As known at position 30 (the article, one commit, before the monitor's report) the same
    # day shows the roundabout as ISIS's, undisputed: what the database said then. The demo
    # loads its side registry after its reports, so then no side had a display name yet.
    page.fill("#known-at", "position:30")
    page.click("#known-form button[type=submit]")
    map_page.wait_loaded("2017-06-04", "position:30")
    then = drawn(page, ROUNDABOUT)
    assert (then["fillColor"], then["disputed"]) == (legend_color(page, "isis"), False)
    expect(page.locator("#claims")).to_have_count(0)
    expect(page.locator("#place-reading")).to_contain_text("isis, controlled")
    assert map_page.console.errors == []
