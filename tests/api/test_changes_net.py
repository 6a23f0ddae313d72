"""GET /v1/state/changes?net=true: each place's reading before and after a range, once.

The seed demo and a few reports go in through ``POST /v1/events``; the net answer is checked
against the every-transition answer of the same range (its first ``before`` and last
``after`` per place), page by page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.conftest import assert_problem
from tests.api.test_changes import report
from tests.api.test_front import DARAA, GOV, RAQQA, post

Client = AsyncTestClient[Litestar]

SEED: Final = Path(__file__).resolve().parents[2] / "demo" / "seed.ndjson"
JUNE: Final = {"from": "2017-06-01", "to": "2017-06-06"}
MASKANAH: Final = "sy-maskanah"


async def seed(client: Client) -> None:
    """Import the whole seed."""
    response = await client.post(
        "/v1/events", content=SEED.read_bytes(), headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 201, response.text


async def changes(client: Client, **params: str | int) -> dict[str, Any]:
    """GET /v1/state/changes, which must answer 200."""
    response = await client.get("/v1/state/changes", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def reading(segment: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """A segment's controller, status, status_by and disputed flag."""
    if segment is None:
        return None
    return (segment["controller"], segment["status"], segment["status_by"], segment["disputed"])


async def every_page(client: Client, **params: str | int) -> list[dict[str, Any]]:
    """Every item of every page, following ``next_cursor``."""
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = await changes(client, **params, cursor=cursor)
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        cursor = page["next_cursor"]


async def test_maskanah_net_is_from_nothing_to_the_governments(client: Client) -> None:
    """Over 06-01..06-06 Maskanah changed twice (ISIS's encircled town on 06-02, the
    government's on 06-03); its net change is one item: no segment before, the government's
    controlled segment after, from the first change to the last."""
    await seed(client)
    answer = await changes(client, **JUNE, place=MASKANAH, net="true")
    assert answer["net"] is True
    (item,) = answer["items"]
    assert item["place"]["id"] == MASKANAH
    assert (item["first_at"], item["last_at"], item["transitions"]) == (
        "2017-06-02T00:00:00Z",
        "2017-06-03T00:00:00Z",
        2,
    )
    assert item["before"] is None
    assert reading(item["after"]) == (GOV, "controlled", None, False)
    assert item["changed"] == ["controller", "status", "status_by", "disputed"]
    full = await changes(client, **JUNE, place=MASKANAH)
    assert item["after"] == full["items"][-1]["after"]
    assert full["net"] is False


async def test_a_place_that_changed_and_changed_back_is_not_listed(client: Client) -> None:
    """Raqqa held by ISIS, taken by the government on 06-02 and back by ISIS on 06-04: two
    changes inside 06-01..06-06, no net change; Daraa, taken on 06-03, is listed with ISIS
    before and the government after."""
    await post(
        client,
        report(RAQQA, "control", "isis", "2017-05-01"),
        report(RAQQA, "capture", GOV, "2017-06-02"),
        report(RAQQA, "capture", "isis", "2017-06-04"),
        report(DARAA, "control", "isis", "2017-05-01"),
        report(DARAA, "capture", GOV, "2017-06-03"),
    )
    full = await changes(client, **JUNE)
    assert [i["place"]["id"] for i in full["items"]] == ["sy-daraa", "sy-raqqa", "sy-raqqa"]
    net = await changes(client, **JUNE, net="true")
    (daraa,) = net["items"]
    assert daraa["place"]["id"] == "sy-daraa"
    assert (reading(daraa["before"]), reading(daraa["after"])) == (
        ("isis", "controlled", None, False),
        (GOV, "controlled", None, False),
    )
    assert daraa["changed"] == ["controller"]


async def test_net_pages_list_each_place_once_and_agree_with_every_transition(
    client: Client,
) -> None:
    """Page by page (one place a page, then two), the net answer lists each place once, and
    it is what the every-transition answer gives: per place, the `before` of its first change
    and the `after` of its last, when they differ."""
    await seed(client)
    full = await every_page(client, **JUNE, limit=3)
    expected: dict[str, tuple[Any, ...]] = {}
    for item in full:
        place = item["place"]["id"]
        first = expected.get(place, (item["before"], item["at"], 0))
        expected[place] = (first[0], first[1], first[2] + 1, item["after"], item["at"])
    wanted = {
        place: value for place, value in expected.items() if reading(value[0]) != reading(value[3])
    }
    for limit in (1, 2, 1000):
        pages = []
        cursor = ""
        while True:
            page = await changes(client, **JUNE, net="true", limit=limit, cursor=cursor)
            assert len(page["items"]) <= limit
            pages.append(page)
            if page["next_cursor"] is None:
                break
            cursor = page["next_cursor"]
        items = [i for p in pages for i in p["items"]]
        ids = [i["place"]["id"] for i in items]
        assert ids == sorted(wanted), limit
        for item in items:
            before, first_at, count, after, last_at = wanted[item["place"]["id"]]
            assert (item["before"], item["after"]) == (before, after)
            assert (item["first_at"], item["last_at"], item["transitions"]) == (
                first_at,
                last_at,
                count,
            )
    assert len(wanted) >= 5


async def test_net_takes_a_boolean(client: Client) -> None:
    """`net` that is not a boolean is a 422 problem naming it; `net=false` is the
    every-transition form."""
    assert_problem(
        await client.get("/v1/state/changes", params={**JUNE, "net": "maybe"}), 422, "net"
    )
    plain = await changes(client, **JUNE, net="false")
    assert set(plain) == {"frame", "from", "to", "net", "items", "next_cursor", "next"}
    assert plain["net"] is False


async def test_a_cursor_past_the_range_end_continues_after_its_place(client: Client) -> None:
    """Finding: a cursor whose instant is past `to` (the pattern allows any instant) made the
    changes query build a range whose lower bound passed its upper one: a 500. It now reads
    nothing more of the cursor's place and goes on with the places after it."""
    await seed(client)
    full = await every_page(client, **JUNE)
    after_maskanah = [i for i in full if i["place"]["id"] > MASKANAH]
    page = await changes(client, **JUNE, cursor=f"{MASKANAH}@2018-01-01T00:00:00Z", limit=1000)
    assert page["items"] == after_maskanah
    assert page["next_cursor"] is None
