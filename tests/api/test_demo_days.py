"""The demo as ``make run`` loads it: the seed article and the days after it, one commit per
publication day, read back through the real app.

The story each day tells is pinned here: what the front said after the article alone, and
how ISIS's denial, South Front's correction, the monitor's confirmation and its casualty
figure change the answers as known at each later commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service import bootstrap
from service.settings import Settings
from service.usecases.demo import DemoLoaded, demo_commits, demo_files, load_demo
from service.usecases.registry import load_default_registries

Client = AsyncTestClient[Litestar]

MASKANAH: Final = "sy-maskanah"
SCHOOL: Final = "sy-deir-ezzor-panorama-school"
ROUNDABOUT: Final = "sy-deir-ezzor-panorama-roundabout"
SCHOOL_CAPTURE: Final = "ed03138f-5712-5095-98e9-5e2ac09ac7c0"
MASKANAH_CAPTURE: Final = "3a57e93f-103b-5697-b682-b0f2fe7361e4"
ARTICLE, DENIAL, CONFIRMATION, SETTLED = 30, 32, 35, 36
"""The last position of each day's commit."""


async def load(settings: Settings) -> DemoLoaded:
    """Load the demo into the test's database as ``frontline serve --demo`` does."""
    async with bootstrap.services(settings) as services:
        return await load_demo(services.store, demo_commits(demo_files()))


@pytest.fixture
async def client(settings: Settings, app: Litestar, admin_key: str) -> AsyncIterator[Client]:
    """An admin's client on the real app, over a database holding the demo."""
    done = await load(settings)
    assert done.commits == (
        ("2017-06-05", ARTICLE),
        ("2017-06-06", DENIAL),
        ("2017-06-07", CONFIRMATION),
        ("2017-06-08", SETTLED),
    )
    assert (done.accepted, done.duplicate) == (36, 0)
    async with AsyncTestClient(app=app) as test_client:
        test_client.headers["authorization"] = f"Bearer {admin_key}"
        yield test_client


async def state(client: Client, valid_at: str, known_at: int | None = None) -> dict[str, Any]:
    """Every place's segment at ``valid_at`` (as known at position ``known_at``), by id."""
    params = {"valid_at": valid_at, "limit": "500"}
    if known_at is not None:
        params["known_at"] = f"position:{known_at}"
    response = await client.get("/v1/state", params=params)
    assert response.status_code == 200, response.text
    return {item["place"]["id"]: item["segment"] for item in response.json()["items"]}


async def disputed(client: Client, valid_at: str, known_at: int | None = None) -> set[str]:
    """The places /v1/disputes lists at ``valid_at`` (as known at ``known_at``)."""
    params = {"valid_at": valid_at}
    if known_at is not None:
        params["known_at"] = f"position:{known_at}"
    response = await client.get("/v1/disputes", params=params)
    assert response.status_code == 200, response.text
    return {item["place"]["id"] for item in response.json()["items"]}


async def test_each_publication_day_is_one_commit_and_a_reload_stores_nothing(
    client: Client, settings: Settings
) -> None:
    """The demo's 36 events arrive as four commits (5, 6, 7 and 8 June: positions 30, 32,
    35, 36: the client fixture checks them), in publication order; loading it again stores
    nothing new."""
    again = await load(settings)
    assert (again.accepted, again.duplicate) == (0, 36)
    assert again.commits[-1] == ("2017-06-08", SETTLED)
    head = (await client.get("/v1/audit/head")).json()
    assert head["position"] == SETTLED


async def test_after_the_article_alone_there_is_no_dispute(client: Client) -> None:
    """As known at the article's commit, nothing is disputed on 3-5 June, Maskanah is the
    government's (South Front's self-serving report: 14) and the Panorama School ISIS's."""
    for day in ("2017-06-03", "2017-06-04", "2017-06-05"):
        assert await disputed(client, day, ARTICLE) == set()
    front = await state(client, "2017-06-04", ARTICLE)
    assert (front[MASKANAH]["controller"], front[MASKANAH]["confidence"]) == (
        "syrian-government",
        14,
    )
    assert front[MASKANAH]["disputed"] is False
    assert front[SCHOOL]["controller"] == "isis"


async def test_isis_denial_opens_a_dispute_over_maskanah(client: Client) -> None:
    """After the second day, ISIS's denial of the capture (a claim for ISIS over 3 June)
    makes Maskanah disputed from 3 June; the government still wins (0.144 against 0.048)."""
    assert await disputed(client, "2017-06-04", DENIAL) == {MASKANAH}
    segment = (await state(client, "2017-06-03", DENIAL))[MASKANAH]
    assert segment["controller"] == "syrian-government"
    assert segment["disputed"] is True
    sides = {(claim["source"], claim["side"]) for claim in segment["claims"]}
    assert sides == {
        ("South Front", "syrian-government"),
        ("ISIS (claim relayed by South Front)", "isis"),
    }


async def test_the_correction_takes_the_school_capture_out_of_force(client: Client) -> None:
    """South Front's correction turns its Panorama School capture into a clash: the school
    is contested with no controller from the second day on, and the capture is listed out
    of force, linked from the correction."""
    assert (await state(client, "2017-06-04", ARTICLE))[SCHOOL]["controller"] == "isis"
    school = (await state(client, "2017-06-04", DENIAL))[SCHOOL]
    assert (school["controller"], school["status"]) == (None, "contested")
    answer = (await client.get(f"/v1/places/{SCHOOL}/events")).json()
    capture = next(e for e in answer["events"] if e["id"] == SCHOOL_CAPTURE)
    assert capture["in_force"] is False
    assert [link["relation"] for link in capture["linked_from"]] == ["corrects"]


async def test_the_confirmation_raises_confidence_and_a_later_report_settles_it(
    client: Client,
) -> None:
    """The monitor's confirmation of the capture (B, neutral, credibility 2: 0.512) lifts
    Maskanah's confidence on 3 June to 58, still disputed; its report of 7 June closes the
    dispute from then on. The monitor's report of the roundabout on 4 June disputes ISIS's
    capture there, which keeps it (0.432 against 0.384)."""
    segment = (await state(client, "2017-06-03", CONFIRMATION))[MASKANAH]
    assert (segment["confidence"], segment["disputed"]) == (58, True)
    assert "Syria monitor (demo)" in {claim["source"] for claim in segment["claims"]}
    assert (await state(client, "2017-06-06"))[MASKANAH]["disputed"] is True
    assert (await state(client, "2017-06-07"))[MASKANAH]["disputed"] is False
    assert await disputed(client, "2017-06-05") == {MASKANAH, ROUNDABOUT}
    roundabout = (await state(client, "2017-06-04"))[ROUNDABOUT]
    assert (roundabout["controller"], roundabout["disputed"]) == ("isis", True)
    answer = (await client.get(f"/v1/events/{MASKANAH_CAPTURE}")).json()
    assert {link["relation"] for link in answer["linked_from"]} == {"denies", "confirms"}


async def test_two_casualty_figures_for_abbasiya_stay_side_by_side(client: Client) -> None:
    """ISIS's claim of 21 killed and the monitor's 9 (between 9 and 12) for the same attack
    are both listed, each with its source: never averaged, never merged."""
    answer = (await client.get("/v1/places/sy-abbasiya/events")).json()
    figures = {
        (entry["event"]["source"]["name"], entry["event"]["casualties"]["killed"])
        for entry in answer["events"]
    }
    assert figures == {("ISIS (claim relayed by South Front)", 21), ("Syria monitor (demo)", 9)}


DAYS: Final = ("2017-05-30", "2017-06-02", "2017-06-03", "2017-06-04", "2017-06-05", "2017-06-07")


async def test_the_registries_loaded_after_the_reports_change_no_answer(
    client: Client, settings: Settings, owner: asyncpg.Connection
) -> None:
    """The demo's registries (demo/sides.json, then demo/sources.json) come after its
    reports, a commit each (positions 37-47 and 48-50), as ``frontline demo`` loads them:
    the reports name sides by their canonical ids and cite their sources with the grades
    and alignments registered, so the front, the disputes and Maskanah's timeline as known
    at the head are those as known at the last report; the sources read as registered; a
    second load stores nothing."""
    async with bootstrap.services(settings) as services:
        sides, sources = await load_default_registries(services.committer)
        again = await load_default_registries(services.committer)
    assert [r.position for r in sides] == list(range(37, 48))
    assert [r.position for r in sources] == [48, 49, 50]
    assert all(r.duplicate for r in (*again[0], *again[1]))
    head = (await client.get("/v1/audit/head")).json()
    assert head["position"] == 50
    changed = "SELECT count(*) FROM segments WHERE known_from > $1 OR known_to > $1"
    assert await owner.fetchval(changed, SETTLED) == 0
    for day in DAYS:
        assert await state(client, day) == await state(client, day, SETTLED), day
        assert await disputed(client, day) == await disputed(client, day, SETTLED), day
    timeline = await client.get(f"/v1/places/{MASKANAH}/timeline")
    settled = await client.get(
        f"/v1/places/{MASKANAH}/timeline", params={"known_at": f"position:{SETTLED}"}
    )
    assert timeline.json()["segments"] == settled.json()["segments"]
    registered = (await client.get("/v1/sources")).json()["sources"]
    assert {(s["source"], s["reliability"], s["alignment"]) for s in registered} == {
        ("South Front", "C", "syrian-government"),
        ("ISIS (claim relayed by South Front)", "D", "isis"),
        ("Syria monitor (demo)", "B", "neutral"),
    }
    by_alias = await client.get("/v1/sources/south%20front%3A%20analysis%20%26%20intelligence")
    assert by_alias.json()["source"] == "South Front"
