"""The demo's days after the article: ``demo/followups.ndjson`` read as the contract reads it.

Each line is a valid event of contract v1 with a fixed id derived from a readable key; each
names a seed place exactly as the seed does; its links point at seed events, and a correction
comes from the source of the event it corrects (DESIGN section 3: only that source may);
every report was published after the article, so the demo's commits keep publication order.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Final

from contracts.events import event_decoder
from service.usecases.demo import demo_commits

DEMO: Final = Path(__file__).resolve().parents[2] / "demo"
NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://frontline.invalid/demo/followups")

#: The readable key of every event, in file order: id = uuid5(NAMESPACE, key).
KEYS: Final = (
    "2017-06-06/maskanah/statement/denies-capture",
    "2017-06-06/deir-ezzor-panorama-school/clash/isis",
    "2017-06-07/maskanah/statement/confirms-capture",
    "2017-06-07/abbasiya/casualties/syrian-government",
    "2017-06-07/deir-ezzor-panorama-roundabout/control/syrian-government",
    "2017-06-08/maskanah/control/syrian-government",
)


def lines(name: str) -> list[bytes]:
    """The non-blank lines of a demo file."""
    return [line for line in (DEMO / name).read_bytes().splitlines() if line.strip()]


def test_every_line_is_an_event_with_its_derived_id() -> None:
    """Every line decodes as a contract event; the ids are uuid5 of the listed keys, the
    namespace itself derived from a fixed URL (3ad487f5-...)."""
    events = [event_decoder.decode(line) for line in lines("followups.ndjson")]
    assert str(NAMESPACE) == "3ad487f5-1e4d-5d27-b968-e2fea46eb1ec"
    assert [event.id for event in events] == [uuid.uuid5(NAMESPACE, key) for key in KEYS]


def test_places_links_and_sources_agree_with_the_seed() -> None:
    """Each follow-up names a seed place with the seed's very place object; every link
    points at a seed event; a correction's source is the corrected event's source; every
    follow-up was published after the article (5 June)."""
    seed = [json.loads(line) for line in lines("seed.ndjson")]
    places = {event["place"]["id"]: event["place"] for event in seed}
    by_id = {event["id"]: event for event in seed}
    relations = []
    for event in map(json.loads, lines("followups.ndjson")):
        assert event["place"] == places[event["place"]["id"]]
        assert event["source"]["published_at"] > "2017-06-05"
        assert event["notes"].startswith("Illustrative: written for the demo")
        for link in event.get("relates_to", []):
            target = by_id[link["event"]]
            relations.append(link["relation"])
            if link["relation"] in ("corrects", "retracts", "supersedes"):
                assert event["source"]["name"] == target["source"]["name"]
    assert sorted(relations) == ["confirms", "corrects", "denies"]


def test_the_demo_commits_one_publication_day_at_a_time_in_order() -> None:
    """The article (30 events, 5 June) is the first commit; each later day is a commit of
    its own, days in order, each day's events in file order."""
    commits = demo_commits(
        [(DEMO / "seed.ndjson").read_bytes(), (DEMO / "followups.ndjson").read_bytes()]
    )
    assert [(c.published, len(c.lines)) for c in commits] == [
        ("2017-06-05", 30),
        ("2017-06-06", 2),
        ("2017-06-07", 3),
        ("2017-06-08", 1),
    ]
    assert list(commits[0].lines) == lines("seed.ndjson")
    # Days sort by date whatever the order of the files.
    reversed_files = demo_commits(
        [(DEMO / "followups.ndjson").read_bytes(), (DEMO / "seed.ndjson").read_bytes()]
    )
    assert [c.published for c in reversed_files] == [c.published for c in commits]
