"""Unmapped actors (issue 14): the side names the log's events use that no side registry
entry knows, as known at K, listed with their counts (``GET /v1/sides/unmapped``), flagged
by the import that brought them, and mapped by an editor in one step (a ``POST /v1/sides``
with the name as an alias). Bad parameters are problems naming the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.conftest import assert_problem, import_file
from tests.api.test_sides import GOVERNMENT, ISIS, REUTERS, post, register
from tests.payloads import at_place, event_json

Client = AsyncTestClient[Litestar]

UCDP: Final = (Path(__file__).parent.parent / "fixtures" / "interop" / "ucdp-ged.csv").read_bytes()


async def unmapped(client: Client, **params: str) -> dict[str, Any]:
    """The page of ``GET /v1/sides/unmapped`` (200 expected)."""
    response = await client.get("/v1/sides/unmapped", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def counts(page: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """A page's names with their (events, claims, places)."""
    return {i["side"]: (i["events"], i["claims"], i["places"]) for i in page["items"]}


async def test_unmapped_names_are_listed_with_their_events_claims_and_places(
    client: Client,
) -> None:
    """Names the registry does not know are listed with the events naming them (as side or
    opponent, an event counted once), the control claims giving them a place (a capture's
    side, a withdrawal's opponent) and the places; registered ids and aliases are not;
    most used first, then by name."""
    await register(client, {**GOVERNMENT, "aliases": ["syrian-arab-army"]})
    await post(
        client,
        event_json(side="tiger-forces", opponent="isis", source=REUTERS),
        at_place("sy-raqqa", type="clash", side="tiger-forces", opponent="is"),
        at_place("sy-raqqa", type="withdrawal", side="is", opponent="tiger-forces"),
        at_place("sy-tabqa", type="control", side="syrian-arab-army", opponent=None),
        at_place("sy-deir", type="clash", side="isis", opponent="isis"),
    )
    page = await unmapped(client)
    assert counts(page) == {
        "tiger-forces": (3, 2, 2),
        "isis": (2, 0, 2),
        "is": (2, 0, 1),
    }
    assert [i["side"] for i in page["items"]] == ["tiger-forces", "is", "isis"]
    assert (page["next_cursor"], page["next"]) == (None, None)
    assert "link" not in {k.lower() for k in (await client.get("/v1/sides/unmapped")).headers}


async def test_one_post_maps_a_name_and_the_list_follows_the_known_position(
    client: Client,
) -> None:
    """The one step: a ``POST /v1/sides`` restating the entry with the name among its
    aliases (``expect`` its version). From its position the name is no longer listed, and
    as known before it the name still is, with the same counts."""
    (first,) = await register(client, GOVERNMENT)
    await post(client, event_json(side="government-of-syria-2", opponent=None, type="control"))
    before = await unmapped(client)
    assert counts(before) == {"government-of-syria-2": (1, 1, 1)}
    entry = {
        **GOVERNMENT,
        "aliases": [*GOVERNMENT["aliases"], "government-of-syria-2"],
        "expect": first["place_version"],
    }
    response = await client.post("/v1/sides", json=entry)
    assert response.status_code == 201, response.text
    assert counts(await unmapped(client)) == {}
    as_before = await unmapped(client, known_at=f"position:{before['known_position']}")
    assert counts(as_before) == counts(before)
    assert as_before["known_position"] == before["known_position"]


async def test_pages_follow_each_other_to_the_whole_list(client: Client) -> None:
    """With ``limit=2`` the pages, followed by ``next_cursor``, by ``next`` and by the
    ``Link`` header alike, give the whole list once, in its order; the last page names
    no next one."""
    await post(
        client,
        *(
            at_place(f"sy-place-{n}", side=f"group-{n % 3}", opponent=f"band-{n % 2}")
            for n in range(7)
        ),
    )
    whole = (await unmapped(client, limit="100"))["items"]
    assert len(whole) == 5
    seen: list[dict[str, Any]] = []
    url: str | None = "/v1/sides/unmapped?limit=2"
    pages = 0
    while url is not None:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(body["items"])
        pages += 1
        if body["next"] is None:
            assert body["next_cursor"] is None
            assert "link" not in response.headers
        else:
            assert response.headers["link"] == f'<{body["next"]}>; rel="next"'
            by_cursor = await unmapped(client, limit="2", cursor=body["next_cursor"])
            assert by_cursor["items"] == (await client.get(body["next"])).json()["items"]
        url = body["next"]
    assert seen == whole
    assert pages == 3


async def test_an_import_lists_the_labels_it_left_unmapped(client: Client) -> None:
    """A UCDP GED import into a log whose registry knows the government and IS under their
    UCDP labels lists only the other actors' labels as unmapped, with their events in the
    import; the same labels are what ``GET /v1/sides/unmapped`` lists. Imported again, the
    duplicates name them too."""
    await register(
        client,
        {**GOVERNMENT, "aliases": ["government-of-syria"]},
        {**ISIS, "aliases": ["is"]},
    )
    result = await import_file(client, UCDP, "ucdp-ged")
    listed = {u["side"]: u["events"] for u in result["unmapped_sides"]}
    assert result["unmapped"] == len(listed) > 0
    assert "government-of-syria" not in listed
    assert "is" not in listed
    page = counts(await unmapped(client))
    assert set(page) == set(listed)
    assert all(page[name][0] == events for name, events in listed.items())
    again = await import_file(client, UCDP, "ucdp-ged")
    assert {u["side"]: u["events"] for u in again["unmapped_sides"]} == listed


async def test_an_import_of_mapped_labels_lists_none(client: Client) -> None:
    """NDJSON events naming only registered sides and aliases leave no unmapped label."""
    await register(client, GOVERNMENT, ISIS)
    line = event_json(side="syrian-arab-army", opponent="is")
    response = await client.post(
        "/v1/events",
        content=json.dumps(line).encode() + b"\n",
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 201, response.text
    assert (response.json()["unmapped"], response.json()["unmapped_sides"]) == (0, [])


async def test_bad_parameters_are_problems_naming_the_field(client: Client) -> None:
    """A limit under 1 or over the page maximum, a cursor that is not ``events:side``, and
    a known_at that is neither a time nor a position are 422s naming the parameter."""
    for params, field in (
        ({"limit": "0"}, "limit"),
        ({"limit": "1000000"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": "3:Not A Slug"}, "cursor"),
        ({"known_at": "yesterday"}, "known_at"),
    ):
        response = await client.get("/v1/sides/unmapped", params=params)
        assert_problem(response, 422, field)


async def test_no_side_may_be_registered_as_unmapped(client: Client) -> None:
    """``unmapped`` names the list: registering it as a side or an alias is a 422 naming
    the field, and nothing is written."""
    response = await client.post("/v1/sides", json={**GOVERNMENT, "side": "unmapped"})
    assert_problem(response, 422, "side")
    response = await client.post("/v1/sides", json={**GOVERNMENT, "aliases": ["unmapped"]})
    assert_problem(response, 422, "aliases[0]")
    assert (await client.get("/v1/sides")).json()["sides"] == []
