"""The client's pure parts, without a server: how a list finds its next page in every form
the API speaks (the cursor convention, the log's ``after``/``next``, a history's
``next_after``), SSE parsing, ids given to NDJSON lines, chunk results renumbered, the retry
waits, and problems read from any answer."""

from __future__ import annotations

import ast
import importlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from contracts.idempotency import keyed_event_id
from contracts.problems import problem_type
from contracts.responses import ImportResult, RejectedLine
from frontline.client.errors import Conflict, FrontlineClientError, ServerError, problem_error
from frontline.client.ndjson import Tally, chunks, numbered_lines, stamp_line
from frontline.client.pages import PageWalk, query
from frontline.client.retry import Retry, retry_after_seconds
from frontline.client.sse import SseParser


def _walk(path: str = "/v1/state", *, pin: bool = False, **params: str) -> PageWalk[int]:
    return PageWalk(path, dict(params), "items", msgspec.json.Decoder(list[int]).decode, pin)


def _page(**members: object) -> bytes:
    return json.dumps(members).encode()


def test_a_cursor_page_passes_next_cursor_as_cursor_until_it_is_null() -> None:
    """``next_cursor`` goes back as ``cursor`` (an ``after`` dropped); null ends the walk."""
    walk = _walk(valid_at="2017-06-05", limit="2")
    assert walk.read(_page(items=[1, 2], next_cursor="b")) == [1, 2]
    assert walk.params == {"valid_at": "2017-06-05", "limit": "2", "cursor": "b"}
    assert not walk.done
    assert walk.read(_page(items=[3], next_cursor=None)) == [3]
    assert walk.done


def test_the_cursor_convention_wins_over_a_next_link_and_an_after() -> None:
    """The convention every list is moving to (``next_cursor``, a relative ``next`` URL, a
    ``total``): the cursor is followed, the URL ignored, an ``after`` left behind."""
    walk = _walk("/v1/events", after="10", limit="2")
    page = _page(
        events=None, items=[11, 12], next_cursor="c12", next="/v1/events?cursor=c12", total=40
    )
    assert walk.read(page) == [11, 12]
    assert walk.params == {"limit": "2", "cursor": "c12"}
    assert walk.total == 40


def test_the_logs_after_and_next_are_followed_until_an_empty_page() -> None:
    """The log's older form: ``next`` (a position) becomes ``after``; an empty page ends."""
    walk = PageWalk("/v1/events", {"limit": "2"}, "events", msgspec.json.Decoder(list[int]).decode)
    assert walk.read(_page(events=[1, 2], next=2)) == [1, 2]
    assert walk.params == {"limit": "2", "after": "2"}
    assert walk.read(_page(events=[], next=2)) == []
    assert walk.done


def test_a_historys_next_after_is_followed_until_null() -> None:
    """``next_after`` goes back as ``after``; null ends the walk."""
    walk = PageWalk("/h", {}, "entries", msgspec.json.Decoder(list[int]).decode)
    walk.read(_page(entries=[1], next_after=8))
    assert walk.params == {"after": "8"}
    walk.read(_page(entries=[2], next_after=None))
    assert walk.done


def test_pages_about_the_front_are_pinned_to_the_first_pages_position() -> None:
    """The page after the first asks ``known_at=position:N`` with the first page's
    ``frame.known_position``, whatever ``known_at`` the walk began with."""
    walk = _walk(pin=True, known_at="2026-01-01T00:00:00Z")
    walk.read(_page(items=[1], next_cursor="x", frame={"known_position": 30, "policy": "p"}))
    assert walk.params["known_at"] == "position:30"
    assert walk.frame is not None
    assert msgspec.json.decode(walk.frame)["policy"] == "p"


def test_a_server_naming_the_same_page_again_is_an_error_not_a_loop() -> None:
    """A next page equal to the one just read raises instead of walking forever."""
    walk = _walk()
    walk.read(_page(items=[1], next_cursor="a"))
    with pytest.raises(FrontlineClientError, match="same page"):
        walk.read(_page(items=[1], next_cursor="a"))


def test_an_answer_without_its_items_member_is_an_error() -> None:
    """A page lacking the list's member raises, naming it."""
    with pytest.raises(FrontlineClientError, match="'items'"):
        _walk().read(_page(rows=[]))


def test_query_parameters_are_spelt_as_the_api_takes_them() -> None:
    """None left out, booleans lower case, a bbox joined by commas, ``from_`` as ``from``,
    datetimes in ISO 8601."""
    moment = datetime(2017, 6, 5, tzinfo=UTC)
    assert query(from_=moment, net=True, disputed=False, bbox=(37, 35, 39, 37), place=None) == {
        "from": "2017-06-05T00:00:00+00:00",
        "net": "true",
        "disputed": "false",
        "bbox": "37,35,39,37",
    }


def test_sse_messages_heartbeats_and_resumption_ids() -> None:
    """Messages end at a blank line with their id; comments (heartbeats) and messages
    without data dispatch nothing; multi-line data is joined."""
    parser = SseParser()
    lines = [": heartbeat", "", "id: 7", "event: event", "data: {", "data: }", "", "id: 8", ""]
    messages = [m for m in map(parser.feed, lines) if m is not None]
    assert [(m.id, m.event, m.data) for m in messages] == [("7", "event", "{\n}")]
    assert parser.last_id == "8"


def test_ndjson_lines_get_the_derived_id_only_where_they_have_none() -> None:
    """A line with an id is left as it is; one without gets keyed_event_id(key, index) as
    its first member; ``"id": null`` is replaced; ``{}`` and lines that are no JSON object
    pass unchanged to be rejected by the server."""
    derived = str(keyed_event_id("k", 4))
    given = b'{"id": "5b0c2c1e-6f0a-4a53-9d7e-6b7a3c1f2a10", "type": "capture"}'
    assert stamp_line(given, "k", 4) == given
    assert json.loads(stamp_line(b' {"type": "capture"}', "k", 4)) == {
        "id": derived,
        "type": "capture",
    }
    assert json.loads(stamp_line(b'{"id": null, "type": "x"}', "k", 4))["id"] == derived
    assert json.loads(stamp_line(b"{ }", "k", 4)) == {"id": derived}
    assert stamp_line(b"not json", "k", 4) == b"not json"
    assert stamp_line(b"[1, 2]", "k", 4) == b"[1, 2]"


def test_lines_are_numbered_as_in_the_stream_and_chunked_by_count_and_size() -> None:
    """Blank lines keep their numbers but are not sent; a chunk holds at most ``max_lines``
    lines and about ``max_bytes`` bytes; the index of a line's id is its number minus one."""
    source = [b'{"a": 1}', b"", b'{"a": 2}\n', b'{"a": 3}', b'{"a": 4}']
    numbered = list(numbered_lines(source, "k"))
    assert [n for n, _ in numbered] == [1, 3, 4, 5]
    assert json.loads(numbered[1][1])["id"] == str(keyed_event_id("k", 2))
    by_count = list(chunks(numbered, max_lines=3, max_bytes=1 << 20))
    assert [c.numbers for c in by_count] == [[1, 3, 4], [5]]
    by_size = list(chunks(numbered, max_lines=100, max_bytes=60))
    assert all(len(c.numbers) == 1 for c in by_size)


def test_chunk_results_add_up_with_the_lines_of_the_whole_stream() -> None:
    """Counts add up; a rejected line's number in its chunk becomes its number in the stream;
    at most ``max_errors`` are listed while ``rejected`` counts every one."""
    tally = Tally(max_errors=2)
    bad = [RejectedLine(line=1, reason="r"), RejectedLine(line=2, reason="r")]
    tally.add(
        ImportResult(accepted=1, duplicate=0, rejected=2, errors=bad, last_position=5), [4, 9, 10]
    )
    tally.add(
        ImportResult(accepted=2, duplicate=1, rejected=1, errors=bad[:1], last_position=8), [11]
    )
    result = tally.result()
    assert (result.accepted, result.duplicate, result.rejected) == (3, 1, 3)
    assert [e.line for e in result.errors] == [4, 9]
    assert result.last_position == 8


def test_retry_waits_honour_retry_after_and_back_off_otherwise() -> None:
    """Retry-After in seconds or as an HTTP-date is the wait; beyond ``max_retry_after`` or
    the last attempt there is none; without it the wait doubles up to its cap."""
    retry = Retry(attempts=4, backoff=1.0, max_backoff=3.0, max_retry_after=30)
    assert retry.delay(1, "2") == 2.0
    assert retry.delay(1, "31") is None
    assert retry.delay(4, "1") is None
    assert 0.5 <= retry.delay(1, None) <= 1.0  # type: ignore[operator]
    assert 1.5 <= retry.delay(3, None) <= 3.0  # type: ignore[operator]
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:05 GMT", now) == 5.0
    assert retry_after_seconds("soon") is None
    with pytest.raises(ValueError, match="at least 1"):
        Retry(attempts=0)


def test_a_problem_body_becomes_its_exception_with_every_member() -> None:
    """A 409 problem is a Conflict with its standard members and its extensions; an answer
    that is no problem body (a proxy's page) still raises, its text as detail."""
    body = {
        "type": problem_type("wrong-expected-version"),
        "title": "A place is not at the expected version",
        "status": 409,
        "detail": "sy-maskanah is at version 1, not 3",
        "place": "sy-maskanah",
        "expected": 3,
        "actual": 1,
        "request_id": uuid.uuid4().hex,
    }
    error = problem_error(409, json.dumps(body).encode(), {})
    assert isinstance(error, Conflict)
    assert (error.type, error.title, error.status, error.detail) == (
        body["type"],
        body["title"],
        409,
        body["detail"],
    )
    assert error.slug == "wrong-expected-version"
    assert error.extensions["place"] == "sy-maskanah"
    assert error.problem is not None
    assert error.problem.expected == 3
    proxy = problem_error(502, b"<html>Bad gateway</html>", {})
    assert isinstance(proxy, ServerError)
    assert proxy.detail == "<html>Bad gateway</html>"
    assert proxy.type == "about:blank"
    assert proxy.slug is None


def test_the_readmes_client_example_compiles_and_names_what_the_client_exports() -> None:
    """The README's Python client example is valid Python, and every name it imports from
    the client and the contract exists there."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## The Python client", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    tree = ast.parse(code)
    imported = [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    ]
    assert ("frontline.client", "Client") in imported
    for module, name in imported:
        assert hasattr(importlib.import_module(module), name), f"{module}.{name}"
