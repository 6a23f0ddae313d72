"""The live stream as an iterator that resumes itself, and exports that resume half-way, with
the sync client against the real served app."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import httpx
import pytest

from frontline.client import Client, Retry, TransportError
from tests.client.conftest import Proxy, Served
from tests.payloads import at_place


def _append(served: Served, count: int, prefix: str = "sy-live") -> None:
    with Client(served.url, served.key) as frontline:
        frontline.append_batch([at_place(f"{prefix}-{i}", id=None) for i in range(count)])


def test_follow_catches_up_then_delivers_live_events_and_resumes_after_the_last_id(
    served: Served,
) -> None:
    """``follow()`` yields the stored events, then one appended while it waits; a new stream
    from its ``last_event_id`` starts right after it."""
    _append(served, 3)
    with Client(served.url, served.key) as frontline:
        with frontline.follow() as live:
            caught_up = [next(live).position for _ in range(3)]
            later = threading.Timer(0.3, _append, args=(served, 1, "sy-later"))
            later.start()
            arrived = next(live)
            later.join()
            assert live.last_event_id == "4"
        assert caught_up == [1, 2, 3]
        assert (arrived.position, arrived.place) == (4, "sy-later-0")
        _append(served, 2, "sy-after")
        with frontline.follow(last_event_id="4") as resumed:
            assert [next(resumed).position for _ in range(2)] == [5, 6]
        with frontline.follow(after=5, place="sy-after-1") as filtered:
            assert next(filtered).place == "sy-after-1"


def test_a_stream_cut_half_way_is_resumed_with_no_gap_and_no_duplicate(
    served: Served, proxy: Proxy
) -> None:
    """The first connection is cut just after the first message (and the start of the
    second); the iterator reconnects with ``Last-Event-ID: 1`` and yields 2 and 3: every
    position once."""
    _append(served, 3)
    proxy.plan = ["cut:id: 2\n"]
    with (
        Client(proxy.url, served.key, retry=Retry(backoff=0.05)) as frontline,
        frontline.follow() as live,
    ):
        positions = [next(live).position for _ in range(3)]
        assert live.reconnects == 1
    assert positions == [1, 2, 3]
    assert proxy.accepted[:2] == ["cut:id: 2\n", "pass"]


def test_a_stream_that_cannot_reconnect_raises_transport_error(served: Served) -> None:
    """A server that is gone: after the retries, TransportError."""
    with (
        Client("http://127.0.0.1:9", served.key, retry=Retry(attempts=2, backoff=0.01)) as down,
        pytest.raises(TransportError),
    ):
        next(down.follow())


def test_export_writes_what_the_api_serves_and_says_its_position_and_etag(
    served: Served, tmp_path: Path
) -> None:
    """``export()`` to a path writes the bytes GET /v1/export serves, with the position and
    ETag of the answer; to a file object the same; ``known_at`` pins it (to the last commit
    ending at or before it: the first batch's)."""
    _append(served, 3)
    _append(served, 2, "sy-second")
    with Client(served.url, served.key) as frontline:
        done = frontline.export(tmp_path / "log.ndjson", known_at="position:4")
        buffer = io.BytesIO()
        csv = frontline.export(buffer, format="csv")
    raw = httpx.get(
        f"{served.url}/v1/export",
        params={"known_at": "position:4"},
        headers={"authorization": f"Bearer {served.key}"},
    )
    assert (tmp_path / "log.ndjson").read_bytes() == raw.content
    assert done.position == 3
    assert done.bytes > 0
    assert done.etag == raw.headers["etag"]
    assert done.bytes == len(raw.content)
    assert csv.position == 5
    assert buffer.getvalue().count(b"\n") == 6  # the header and five rows


def test_an_export_cut_half_way_is_resumed_to_the_same_bytes(
    served: Served, proxy: Proxy, tmp_path: Path
) -> None:
    """The first connection is cut in the middle of the export; the client asks again for
    the same position and skips what it already wrote: the file is byte for byte the
    export."""
    _append(served, 6)
    with Client(served.url, served.key) as frontline:
        third = next(e for e in frontline.events() if e.position == 3)
    proxy.plan = [f"cut:{third.id}"]
    with Client(proxy.url, served.key, retry=Retry(backoff=0.05)) as frontline:
        done = frontline.export(tmp_path / "log.ndjson")
    raw = httpx.get(f"{served.url}/v1/export", headers={"authorization": f"Bearer {served.key}"})
    assert proxy.accepted[:2] == [f"cut:{third.id}", "pass"]
    assert (tmp_path / "log.ndjson").read_bytes() == raw.content
    assert done.bytes == len(raw.content)


def test_export_front_writes_the_fronts_csv(served: Served) -> None:
    """``export_front()`` writes the CSV of GET /v1/state?format=csv, with its ETag."""
    _append(served, 2)
    buffer = io.BytesIO()
    with Client(served.url, served.key) as frontline:
        done = frontline.export_front(buffer, valid_at="2017-06-05")
    assert buffer.getvalue().startswith(b"place_id,")
    assert done.etag is not None
    assert done.bytes == len(buffer.getvalue())
