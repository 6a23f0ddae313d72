"""The sync client's writes against the real served app: one event, a batch with ``expect``,
NDJSON streams of any size, retries that never store twice, problems raised with their body."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import msgspec
import pytest

from contracts.events import Capture, Place, event_decoder
from contracts.idempotency import keyed_event_id
from frontline.client import Client, Conflict, InvalidInput, Retry
from frontline.client.ndjson import EventLike
from service.settings import Settings
from tests.client.conftest import Proxy, Served, serve_in_thread, stored
from tests.payloads import event_json


def capture(place: str = "sy-maskanah", **changes: object) -> Capture:
    """A capture of ``place`` without an id, as a client builds it from the contract."""
    event = event_json(place={"id": place, "name": place}, id=None, **changes)
    decoded = event_decoder.decode(json.dumps(event))
    assert isinstance(decoded, Capture)
    return decoded


def test_append_without_id_gets_the_contracts_derived_id_and_a_retry_is_a_duplicate(
    served: Served, settings: Settings
) -> None:
    """An event without an id is sent with keyed_event_id(key, 0); the same key again gets
    the original receipt marked duplicate, and the log holds one event."""
    with Client(served.url, served.key) as frontline:
        first = frontline.append(capture(), idempotency_key="run-1")
        again = frontline.append(capture(), idempotency_key="run-1")
    assert first.receipts[0].id == keyed_event_id("run-1", 0)
    assert not first.receipts[0].duplicate
    assert again.receipts[0].id == first.receipts[0].id
    assert again.receipts[0].duplicate
    assert again.receipts[0].position == first.receipts[0].position
    assert settings.migrate_database_url is not None
    assert stored(settings.migrate_database_url) == 1


def test_a_dict_event_with_its_own_id_keeps_it(served: Served) -> None:
    """A dict event carrying an id is sent with that id, whatever the key."""
    event = event_json()
    with Client(served.url, served.key) as frontline:
        result = frontline.append(event, idempotency_key="ignored")
    assert result.receipts[0].id == uuid.UUID(event["id"])


def test_batch_ids_are_those_the_server_derives_from_the_same_idempotency_key(
    served: Served,
) -> None:
    """A batch without ids sent by the client, then the same body posted raw with
    ``Idempotency-Key`` and no ids: the server derives the very ids the client sent (one
    derivation), so the raw post is all duplicates."""
    events = [capture("sy-maskanah"), capture("sy-raqqa"), capture("sy-tabqa")]
    with Client(served.url, served.key) as frontline:
        sent = frontline.append_batch(events, idempotency_key="batch-7")
    assert [r.id for r in sent.receipts] == [keyed_event_id("batch-7", i) for i in range(3)]
    raw = {"events": [msgspec.to_builtins(e) for e in events]}
    assert all("id" not in e for e in raw["events"])
    answer = httpx.post(
        f"{served.url}/v1/events",
        json=raw,
        headers={"authorization": f"Bearer {served.key}", "idempotency-key": '"batch-7"'},
    )
    assert answer.status_code == 200, answer.text
    assert [r["id"] for r in answer.json()["receipts"]] == [str(r.id) for r in sent.receipts]
    assert all(r["duplicate"] for r in answer.json()["receipts"])


def test_batch_expect_conflict_raises_conflict_with_the_versions_and_writes_nothing(
    served: Served, settings: Settings
) -> None:
    """``expect`` that does not hold: a Conflict (409) carrying the problem's place, expected
    and actual version; nothing of the batch is stored. The right version then succeeds."""
    with Client(served.url, served.key) as frontline:
        frontline.append(capture())
        with pytest.raises(Conflict) as caught:
            frontline.append_batch(
                [capture(), capture("sy-raqqa")], expect={"sy-maskanah": 3, "sy-raqqa": "none"}
            )
        problem = caught.value
        assert problem.status == 409
        assert problem.slug == "wrong-expected-version"
        assert problem.extensions["place"] == "sy-maskanah"
        assert problem.extensions["expected"] == 3
        assert problem.extensions["actual"] == 1
        assert problem.problem is not None
        assert problem.problem.actual == 1
        assert settings.migrate_database_url is not None
        assert stored(settings.migrate_database_url) == 1
        done = frontline.append_batch([capture()], expect={"sy-maskanah": 1})
    assert done.receipts[0].place_version == 2


def test_an_invalid_event_raises_the_422_problem_with_its_body(served: Served) -> None:
    """A contract struct the server refuses (a place id that is no slug): InvalidInput whose
    status, type, title, detail and ``field`` are the problem body's."""
    bad = msgspec.structs.replace(capture(), place=Place(id="Not A Slug"))
    with Client(served.url, served.key) as frontline, pytest.raises(InvalidInput) as caught:
        frontline.append(bad)
    problem = caught.value
    assert problem.status == 422
    assert problem.type.startswith("https://")
    assert problem.slug == "invalid-event"
    assert problem.title
    assert problem.detail
    assert problem.field == "place.id"
    assert problem.body["field"] == "place.id"
    assert problem.body["status"] == 422
    assert "place.id" in str(problem)


def test_a_dropped_connection_is_retried_and_the_event_is_stored_once(
    served: Served, proxy: Proxy, settings: Settings
) -> None:
    """The first connection forwards the POST and is dropped before the answer (the server
    stored the event); the client retries with the same derived id and gets the original
    receipt as a duplicate: one event in the log."""
    proxy.plan = ["swallow"]
    with Client(proxy.url, served.key, retry=Retry(backoff=0.05)) as frontline:
        result = frontline.append(capture(), idempotency_key="dropped")
    assert proxy.accepted[:2] == ["swallow", "pass"]
    receipt = result.receipts[0]
    assert receipt.id == keyed_event_id("dropped", 0)
    assert receipt.duplicate  # the first attempt had stored it
    assert settings.migrate_database_url is not None
    assert stored(settings.migrate_database_url) == 1


def test_without_retries_the_dropped_connection_is_a_transport_error(
    served: Served, proxy: Proxy
) -> None:
    """With one attempt, a dropped connection raises TransportError (caused by httpx's)."""
    from frontline.client import TransportError

    proxy.plan = ["swallow"]
    with (
        Client(proxy.url, served.key, retry=Retry(attempts=1)) as frontline,
        pytest.raises(TransportError) as caught,
    ):
        frontline.append(capture())
    assert isinstance(caught.value.__cause__, httpx.TransportError)
    assert caught.value.attempts == 1


def test_a_503_with_retry_after_is_waited_for_then_retried(served: Served, proxy: Proxy) -> None:
    """A 503 ``Retry-After: 1`` (a load balancer's) is retried after at least a second."""
    proxy.plan = ["503"]
    started = time.monotonic()
    with Client(proxy.url, served.key) as frontline:
        result = frontline.append(capture())
    assert time.monotonic() - started >= 1.0
    assert proxy.accepted[:2] == ["503", "pass"]
    assert not result.receipts[0].duplicate


class RecordingTransport(httpx.HTTPTransport):
    """httpx's own transport over the network, noting each answer's status, Retry-After and
    when it came."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, str | None, float]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send as httpx does; note what came back."""
        response = super().handle_request(request)
        self.seen.append(
            (response.status_code, response.headers.get("retry-after"), time.monotonic())
        )
        return response


def test_a_429_from_the_rate_limit_is_waited_for_then_retried(
    client_settings: Settings, admin_key: str
) -> None:
    """Past FRONTLINE_RATE_LIMIT (12 a minute: a token every 5 s) the server answers 429 with
    Retry-After; the client waits as long as it says, and its second attempt passes."""
    server, thread, port = serve_in_thread(replace(client_settings, rate_limit=12))
    try:
        url = f"http://127.0.0.1:{port}"
        auth = {"authorization": f"Bearer {admin_key}"}
        with httpx.Client(base_url=url, headers=auth) as raw:
            codes: list[int] = []
            while 429 not in codes and len(codes) < 100:
                codes.append(raw.get("/v1/audit/head").status_code)
        assert codes[-1] == 429
        recording = RecordingTransport()
        with Client(url, admin_key, transport=recording) as frontline:
            head = frontline.head()
        assert head.position == 0
        assert [status for status, _, _ in recording.seen] == [429, 200]
        (_, retry_after, refused_at), (_, _, passed_at) = recording.seen
        assert retry_after is not None
        assert passed_at - refused_at >= float(retry_after)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_an_ndjson_stream_from_an_iterator_in_chunks_numbers_lines_as_one_stream(
    served: Served,
) -> None:
    """30 events in chunks of 7 lines, two of them bad: accepted and rejected add up, the
    rejected lines carry their numbers in the whole stream, the ids are those of the key and
    line number minus one; the same stream and key again is all duplicates."""
    events: list[EventLike | bytes] = [capture(f"sy-place-{i}") for i in range(30)]
    events[9] = b'{"type": "teleport"}'
    events[22] = b"not json"
    with Client(served.url, served.key) as frontline:
        result = frontline.import_events(iter(events), idempotency_key="bulk", chunk_lines=7)
        assert (result.accepted, result.duplicate, result.rejected) == (28, 0, 2)
        assert [e.line for e in result.errors] == [10, 23]
        stored_ids = {e.id for e in frontline.events()}
        again = frontline.import_events(iter(events), idempotency_key="bulk", chunk_lines=7)
    expected = {keyed_event_id("bulk", n) for n in range(30) if n not in (9, 22)}
    assert stored_ids == expected
    assert (again.accepted, again.duplicate, again.rejected) == (0, 28, 2)


def test_an_ndjson_file_gets_the_ids_the_server_gives_the_whole_file_under_the_key(
    served: Served, tmp_path: Path
) -> None:
    """A file with blank lines, a line with an id, one with ``"id": null`` and one without:
    imported by the client in chunks of 2 lines, then posted whole by curl's way with
    ``Idempotency-Key``: the server derives the same ids, so the second is all duplicates."""
    with_id = event_json(place={"id": "sy-a", "name": "A"})
    null_id = event_json(place={"id": "sy-b", "name": "B"})
    null_id["id"] = None
    no_id = event_json(place={"id": "sy-c", "name": "C"}, id=None)
    body = "\n".join(
        [json.dumps(with_id), "", json.dumps(null_id), "   ", json.dumps(no_id), ""]
    ).encode()
    path = tmp_path / "events.ndjson"
    path.write_bytes(body)
    with Client(served.url, served.key) as frontline:
        result = frontline.import_events(path, idempotency_key="file-key", chunk_lines=2)
        ids = [e.id for e in frontline.events()]
    assert (result.accepted, result.rejected) == (3, 0), result
    assert ids == [
        uuid.UUID(with_id["id"]),
        keyed_event_id("file-key", 2),
        keyed_event_id("file-key", 4),
    ]
    whole = httpx.post(
        f"{served.url}/v1/events",
        content=body,
        headers={
            "authorization": f"Bearer {served.key}",
            "content-type": "application/x-ndjson",
            "idempotency-key": '"file-key"',
        },
    )
    assert whole.status_code == 200, whole.text
    assert (whole.json()["accepted"], whole.json()["duplicate"]) == (0, 3)


def test_an_import_of_a_source_file_and_again_stores_nothing_new(served: Served) -> None:
    """``import_file`` posts an ACLED file to /v1/imports; the same file again is duplicates."""
    acled = Path(__file__).parents[1] / "fixtures" / "interop" / "acled.csv"
    with Client(served.url, served.key) as frontline:
        first = frontline.import_file(acled, "acled")
        again = frontline.import_file(acled.read_bytes(), "acled")
    assert first.accepted > 0
    assert (again.accepted, again.duplicate) == (0, first.accepted)
    assert again.rejected == first.rejected


def test_an_unknown_import_format_raises_the_servers_problem(served: Served) -> None:
    """A format the server does not read: InvalidInput naming ``format``."""
    with Client(served.url, served.key) as frontline, pytest.raises(InvalidInput) as caught:
        frontline.import_file(b"a,b\n", "stata")  # type: ignore[arg-type]
    assert caught.value.field == "format"
    assert caught.value.slug == "invalid-parameter"
