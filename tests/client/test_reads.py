"""The sync client's reads against the real served app: every list as an iterator over all
its pages, the front pinned to one position across pages, tables for pandas, the audit."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.front import PlaceState
from frontline.client import Client, MissingDependency, NotFound
from tests.client.conftest import Served
from tests.payloads import event_json

SEED = Path(__file__).parents[2] / "demo" / "seed.ndjson"


@pytest.fixture
def seeded(served: Served) -> Iterator[Client]:
    """A client on a server whose log holds the demo's 30 events, and a dispute over
    Maskanah on 2017-06-10 (a capture each by two sides, from two sources)."""
    with Client(served.url, served.key) as frontline:
        result = frontline.import_events(SEED, chunk_lines=8)
        assert (result.accepted, result.rejected) == (30, 0)
        frontline.append_batch(
            [
                event_json(id=None, occurred={"start": "2017-06-10"}),
                event_json(
                    id=None,
                    side="isis",
                    opponent="syrian-government",
                    occurred={"start": "2017-06-10"},
                    source={"name": "Amaq", "alignment": "isis"},
                ),
            ]
        )
        yield frontline


def test_the_log_is_read_over_every_page_in_position_order(seeded: Client) -> None:
    """``events(page_size=4)`` yields all 32 events in position order, over 9 pages (the
    last one empty under the log's ``after``/``next`` paging, or none under a cursor's)."""
    pages = seeded.events(page_size=4)
    positions = [e.position for e in pages]
    assert positions == list(range(1, 33))
    assert pages.pages >= 8
    after = [e.position for e in seeded.events(after=30, page_size=100)]
    assert after == [31, 32]
    captures = list(seeded.events(type="capture", page_size=2))
    assert captures
    assert {e.type for e in captures} == {"capture"}


def test_the_front_is_read_over_every_page_and_pinned_to_the_first_pages_position(
    served: Served, seeded: Client
) -> None:
    """``state(page_size=2)`` gives every place once, in id order, as one page would; events
    appended between two pages do not show in the later pages (pinned to the first page's
    ``known_position``)."""
    whole = list(seeded.state(valid_at="2017-06-20", page_size=500))
    pages = seeded.state(valid_at="2017-06-20", page_size=2)
    first = next(pages)
    assert pages.frame is not None
    assert pages.frame.known_position == 32
    with Client(served.url, served.key) as other:
        other.append(event_json(id=None, place={"id": "aa-first-place", "name": "First"}))
    rest = [first, *pages]
    assert [s.place.id for s in rest] == [s.place.id for s in whole]
    assert "aa-first-place" not in {s.place.id for s in rest}
    assert pages.pages == (len(whole) + 1) // 2


def test_disputes_changes_and_history_are_iterators_over_their_pages(seeded: Client) -> None:
    """Disputes on 06-10 name Maskanah with both sides' claims; the changes of early June
    and a place's history come page by page, the same as in one page."""
    disputed = list(seeded.disputes(valid_at="2017-06-10", page_size=1))
    assert [d.place.id for d in disputed] == ["sy-maskanah"]
    assert {c.side for c in disputed[0].segment.claims} == {"isis", "syrian-government"}
    one = list(seeded.changes("2017-06-01", "2017-06-30", page_size=500))
    paged = list(seeded.changes("2017-06-01", "2017-06-30", page_size=3))
    assert [(c.place.id, c.at) for c in paged] == [(c.place.id, c.at) for c in one]
    assert len(one) > 3
    net = list(seeded.net_changes("2017-06-01", "2017-06-30", page_size=2))
    assert net
    assert len({n.place.id for n in net}) == len(net)
    history = seeded.history("sy-maskanah", page_size=1)
    # The seed went in as chunks of 8 lines (Maskanah's reports all in the first), then the
    # dispute's batch: two commits, one a page.
    assert [h.commit_position for h in history] == [8, 32]
    assert history.pages >= 2


def test_single_answers_are_the_contracts_structs(seeded: Client) -> None:
    """A place, its timeline, its events, the extent, an event by id: typed answers; an
    unknown place raises NotFound with the problem body."""
    place = seeded.place("sy-maskanah", valid_at="2017-06-05")
    assert place.place.id == "sy-maskanah"
    assert place.segment is not None
    assert seeded.timeline("sy-maskanah", known_at="position:10").frame.known_position <= 10
    events = seeded.place_events("sy-maskanah")
    assert events.events
    detail = seeded.event(events.events[0].id)
    assert detail.event.id == events.events[0].id
    assert seeded.extent().events == 32
    with pytest.raises(NotFound) as caught:
        seeded.place("sy-nowhere")
    assert caught.value.status == 404
    assert caught.value.body["status"] == 404


def test_place_events_reads_every_page_as_one_answer(seeded: Client) -> None:
    """``place_events`` follows the place's pages (one event a page here) pinned to the
    first page's position, and answers every event once, in position order, as the one-page
    read does."""
    whole = seeded.place_events("sy-maskanah")
    paged = seeded.place_events("sy-maskanah", page_size=1)
    assert len(whole.events) > 1
    assert [e.id for e in paged.events] == [e.id for e in whole.events]
    assert paged.total == whole.total == len(whole.events)
    assert paged.next_cursor is None
    assert paged.next is None


def test_state_events_and_casualties_as_pandas_frames(seeded: Client) -> None:
    """``to_pandas()`` on the front, the log and the casualty claims: one row per item, the
    columns an analyst filters on."""
    front = seeded.state(valid_at="2017-06-20").to_pandas()
    assert {"place_id", "controller", "status", "confidence", "lat", "lon"} <= set(front.columns)
    assert list(front["place_id"]) == sorted(front["place_id"])
    maskanah = front[front["place_id"] == "sy-maskanah"].iloc[0]
    assert maskanah["lat"] == pytest.approx(35.96)
    log = seeded.events().to_pandas()
    assert len(log) == 32
    assert {"position", "type", "source.name", "occurred.start", "place.id"} <= set(log.columns)
    casualties = seeded.casualties().to_pandas()
    assert len(casualties) == 3
    assert {"killed", "source", "place", "casualties_side"} <= set(casualties.columns)
    every = list(seeded.casualties(type=None))
    assert len(every) >= 3  # other kinds of event may carry figures too


def test_to_geopandas_gives_points_in_wgs84(seeded: Client) -> None:
    """``to_geopandas()`` on the front: a GeoDataFrame in EPSG:4326 whose points are the
    places' longitude and latitude."""
    pytest.importorskip("geopandas", reason="GeoPandas is an optional extra, not installed here")
    frame = seeded.state(valid_at="2017-06-20").to_geopandas()
    assert frame.crs.to_epsg() == 4326
    row = frame[frame["place_id"] == "sy-maskanah"].iloc[0]
    assert (row.geometry.x, row.geometry.y) == pytest.approx((38.04, 35.96))


def test_a_table_without_its_package_names_what_to_install(
    seeded: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pandas (or GeoPandas) installed, ``to_pandas()`` raises MissingDependency (an
    ImportError) naming the package to install; nothing is imported before the call."""
    monkeypatch.setitem(sys.modules, "pandas", None)
    monkeypatch.setitem(sys.modules, "geopandas", None)
    with pytest.raises(MissingDependency, match="pip install pandas"):
        seeded.state(valid_at="2017-06-20").to_pandas()
    with pytest.raises(ImportError, match="pip install geopandas"):
        seeded.events().to_geopandas()


def test_the_audit_head_and_verification(seeded: Client) -> None:
    """The head names the last position; the verification is ok, and holds a saved head."""
    head = seeded.head()
    assert head.position == 32
    report = seeded.verify(head=head, projections="full")
    assert report.ok
    assert report.saved_head == "holds"
    with pytest.raises(NotFound):
        seeded.public_key()  # the test server has no signing key


def test_state_items_are_place_states(seeded: Client) -> None:
    """Items of the front are the contract's PlaceState structs."""
    assert all(isinstance(s, PlaceState) for s in seeded.state(valid_at="2017-06-05"))
