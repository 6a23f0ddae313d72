"""The place panel says since when the controller holds the place (``held_since``, DESIGN
section 4): in the reading at the valid time and beside each timeline segment's controller.
Its own server (this module changes a stored segment).

credibility-v1 leaves ``held_since`` null; v2 fills it (Maskanah: the government's from
2017-06-03). The test writes that value into the government's stored segment, as the owner,
so that what is pinned is the page's rendering of what the API serves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import asyncpg
import msgspec
from playwright.sync_api import expect

from contracts.timeline import Segment
from tests.browser.conftest import MapPage, _run

MASKANAH: Final = "sy-maskanah"
JUNE_3: Final = datetime(2017, 6, 3, tzinfo=UTC)


async def _hold_since_june_3(database: str) -> int:
    """Give Maskanah's current segment starting 06-03 held_since 06-03; rows changed."""
    conn = await asyncpg.connect(database)
    try:
        body = await conn.fetchval(
            "SELECT body FROM segments WHERE place_id = $1 AND valid_from = $2"
            " AND known_to IS NULL",
            MASKANAH,
            JUNE_3,
        )
        held = msgspec.structs.replace(msgspec.json.decode(body, type=Segment), held_since=JUNE_3)
        status: str = await conn.execute(
            "UPDATE segments SET body = $1 WHERE place_id = $2 AND valid_from = $3"
            " AND known_to IS NULL",
            msgspec.json.encode(held).decode(),
            MASKANAH,
            JUNE_3,
        )
    finally:
        await conn.close()
    return int(status.split()[-1])


def test_the_panel_shows_since_when_the_controller_holds_the_place(map_page: MapPage) -> None:
    """On 06-05 Maskanah's reading says "held since 2017-06-03" and the timeline's government
    row says "syrian-government since 2017-06-03"; on 06-02 (ISIS's segment, held_since null)
    the reading says nothing of it, nor does ISIS's row."""
    assert _run(_hold_since_june_3(map_page.site.database)) == 1
    page = map_page.page
    map_page.open(f"valid_at=2017-06-05&place={MASKANAH}")
    expect(page.locator("#place-name")).to_have_text("Maskanah")
    expect(page.locator("#held-since")).to_have_text("held since 2017-06-03")
    expect(page.locator("#place-reading")).to_contain_text("syrian-government, controlled")
    rows = page.locator("#timeline tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(2).locator(".held-since")).to_have_text("since 2017-06-03")
    expect(rows.nth(2)).to_contain_text("syrian-government since 2017-06-03")
    expect(rows.nth(1).locator(".held-since")).to_have_count(0)

    map_page.open(f"valid_at=2017-06-02&place={MASKANAH}")
    expect(page.locator("#place-reading")).to_contain_text("isis, encircled")
    expect(page.locator("#held-since")).to_have_count(0)
    assert map_page.console.errors == []
