"""A stateful model test: over the HTTP API, the service never diverges from a simple model.

Hypothesis drives a ``RuleBasedStateMachine`` over the real app (Litestar's sync
``TestClient``, which runs the app and its asyncpg pool in a loop of its own, against a fresh
real database). The rules append single events and atomic batches whose ``expect`` holds the
right version, a stale one, ``none``, ``any-existing`` or nothing; retry earlier requests with
the same body (the original receipts, marked duplicate), with one body changed (422) and mixed
with new events (422); read events, replay the log, and ask each place's version and its
state at a date as known at a position. An in-memory model (:class:`Model`) predicts every
answer: the status code and the key fields of each receipt, problem and read.

Each example works on places of its own, starting at the log's head as it finds it, so the
examples share one database and one app (a fresh database per example would cost a second
each). Each place gets captures on days of its own (never two on one day), so its front is a
plain sequence: the controller at a date is the side of the latest capture on or before it.

Size: ``FRONTLINE_MODEL_EXAMPLES`` examples (25) of ``FRONTLINE_MODEL_STEPS`` steps (30);
``make model`` runs 200 x 50.
"""

from __future__ import annotations

import asyncio
import copy
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, ClassVar, Final

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from litestar import Litestar
from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings
from service.store.db import create_owner_pool
from service.store.keys import KeyStore
from tests.payloads import at_place

EXAMPLES: Final = int(os.environ.get("FRONTLINE_MODEL_EXAMPLES", "25"))
STEPS: Final = int(os.environ.get("FRONTLINE_MODEL_STEPS", "30"))
SIDES: Final = ("syrian-government", "isis", "sdf")
FIRST_DAY: Final = date(2017, 1, 1)
PLACES_PER_EXAMPLE: Final = 3
PROBLEM: Final = "application/problem+json"

Body = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """One POST /v1/events as sent: a single event, or a batch with its ``expect``."""

    events: tuple[Body, ...]
    expect: tuple[Body, ...] = ()
    batch: bool = False

    def json(self) -> Body:
        if not self.batch:
            return self.events[0]
        return {"events": list(self.events), "expect": list(self.expect)}


@dataclass(frozen=True)
class Stored:
    """What the model knows of a stored event."""

    body: Body
    position: int
    place: str
    place_version: int
    commit_position: int


@dataclass(frozen=True)
class Outcome:
    """The answer the model predicts: a status, and receipts or the problem's key fields."""

    status: int
    receipts: tuple[Stored, ...] = ()
    duplicate: bool = False
    field: str | None = None
    place: str | None = None
    expected: int | str | None = None
    actual: int | None = None


@dataclass
class Model:
    """The log as a list, the events by id, and each place's version."""

    base: int
    log: list[str] = field(default_factory=list)
    events: dict[str, Stored] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def head(self) -> int:
        return self.base + len(self.log)

    def version(self, place: str) -> int:
        return self.versions.get(place, 0)

    def predict(self, request: Request) -> Outcome:
        """DESIGN 6: ids before preconditions; then every expectation in order; then append."""
        events = request.events
        many = len(events) > 1
        stored = [self.events.get(e["id"]) for e in events]
        for index, (event, known) in enumerate(zip(events, stored, strict=True)):
            if known is not None and known.body != event:
                return Outcome(422, field=f"events[{index}].id" if many else "id")
        if all(known is not None for known in stored):
            return Outcome(200, receipts=tuple(k for k in stored if k is not None), duplicate=True)
        if any(known is not None for known in stored):
            return Outcome(422, field="events")
        for expectation in request.expect:
            place, wanted = expectation["place"], expectation["version"]
            actual = self.version(place)
            holds = (
                actual == 0
                if wanted == "none"
                else actual > 0
                if wanted == "any-existing"
                else actual == wanted
            )
            if not holds:
                return Outcome(409, place=place, expected=wanted, actual=actual)
        commit = self.head + len(events)
        receipts = []
        versions = dict(self.versions)
        for offset, event in enumerate(events, start=1):
            place = event["place"]["id"]
            versions[place] = versions.get(place, 0) + 1
            receipts.append(
                Stored(event, self.head + offset, place, versions[place], commit_position=commit)
            )
        return Outcome(201, receipts=tuple(receipts))

    def apply(self, outcome: Outcome) -> None:
        if outcome.status != 201:
            return
        for receipt in outcome.receipts:
            self.log.append(receipt.body["id"])
            self.events[receipt.body["id"]] = receipt
            self.versions[receipt.place] = receipt.place_version

    def controller(self, place: str, day: date, known_position: int) -> tuple[bool, str | None]:
        """(whether the place has a segment then, its controller), as known at a position."""
        known = [
            s
            for s in self.events.values()
            if s.place == place and s.commit_position <= known_position
        ]
        before = [s for s in known if date.fromisoformat(s.body["occurred"]["start"]) <= day]
        if not before:
            return False, None
        latest = max(before, key=lambda s: s.body["occurred"]["start"])
        return True, latest.body["side"]


class LogMachine(RuleBasedStateMachine):
    """The API against the model, one example at a time."""

    client: ClassVar[TestClient[Litestar]]
    examples: ClassVar[int] = 0
    appends: ClassVar[int] = 0
    checks: ClassVar[int] = 0
    statuses: ClassVar[Counter[int]] = Counter()

    def __init__(self) -> None:
        super().__init__()
        token = uuid.uuid4().hex[:10]
        self.places = [f"model-{token}-{i}" for i in range(PLACES_PER_EXAMPLE)]
        self.next_day = dict.fromkeys(self.places, 0)
        self.sent: list[Request] = []
        self.model = Model(base=0)
        type(self).examples += 1

    @initialize()
    def find_head(self) -> None:
        """The log's head as this example finds it (earlier examples wrote to the same log)."""
        answer = self.client.get("/v1/audit/head")
        assert answer.status_code == 200, answer.text
        self.model = Model(base=answer.json()["position"])

    # --- writing -------------------------------------------------------------------------

    def _new_event(self, place_index: int, side_index: int) -> Body:
        place = self.places[place_index]
        day = FIRST_DAY + timedelta(days=self.next_day[place])
        self.next_day[place] += 1  # a day of its own: the place's claims never overlap
        return at_place(
            place,
            type="capture",
            side=SIDES[side_index],
            opponent=None,
            occurred={"start": day.isoformat(), "precision": "day"},
        )

    def _send(self, request: Request) -> None:
        """POST the request; the answer must be the model's prediction, then the model moves."""
        type(self).appends += 1
        expected = self.model.predict(request)
        type(self).statuses[expected.status] += 1
        answer = self.client.post("/v1/events", json=request.json())
        assert answer.status_code == expected.status, (answer.text, expected)
        body = answer.json()
        if expected.status in (200, 201):
            receipts = body["receipts"]
            assert len(receipts) == len(expected.receipts)
            for got, want in zip(receipts, expected.receipts, strict=True):
                assert got["id"] == want.body["id"]
                assert got["position"] == want.position
                assert got["place"] == want.place
                assert got["place_version"] == want.place_version
                assert got["commit_position"] == want.commit_position
                assert got["duplicate"] is expected.duplicate
        else:
            assert answer.headers["content-type"].startswith(PROBLEM)
            assert body["status"] == expected.status
            if expected.status == 409:
                assert body["place"] == expected.place
                assert body["expected"] == expected.expected
                assert body["actual"] == expected.actual
            else:
                assert body["field"] == expected.field, body
        self.model.apply(expected)
        self.sent.append(request)

    @rule(place=st.integers(0, PLACES_PER_EXAMPLE - 1), side=st.integers(0, len(SIDES) - 1))
    def append_one(self, place: int, side: int) -> None:
        """A single new event: always stored, at the next position and place version."""
        self._send(Request(events=(self._new_event(place, side),)))

    @rule(
        events=st.lists(
            st.tuples(st.integers(0, PLACES_PER_EXAMPLE - 1), st.integers(0, len(SIDES) - 1)),
            min_size=1,
            max_size=3,
        ),
        expect=st.lists(
            st.tuples(
                st.integers(0, PLACES_PER_EXAMPLE - 1),
                st.sampled_from(["right", "stale", "none", "any-existing"]),
                st.integers(1, 3),
            ),
            max_size=3,
            unique_by=lambda e: e[0],
        ),
    )
    def append_batch(
        self, events: list[tuple[int, int]], expect: list[tuple[int, str, int]]
    ) -> None:
        """An atomic batch whose ``expect`` names each place at most once: right, stale,
        ``none``, ``any-existing`` or absent; 409 (nothing written) when one fails."""
        conditions = []
        for place_index, kind, shift in expect:
            place = self.places[place_index]
            version = self.model.version(place)
            wanted: int | str = kind
            if kind == "right":
                wanted = version
            elif kind == "stale":
                wanted = version + shift if shift > version else version - shift
            conditions.append({"place": place, "version": wanted})
        bodies = tuple(self._new_event(p, s) for p, s in events)
        self._send(Request(events=bodies, expect=tuple(conditions), batch=True))

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def retry_same(self, data: st.DataObject) -> None:
        """An earlier request again, byte for byte: stored ones get their original receipts
        (200, duplicate) even when their ``expect`` no longer holds; refused ones are
        decided again."""
        self._send(data.draw(st.sampled_from(self.sent)))

    @precondition(lambda self: self.model.log)
    @rule(data=st.data(), batch=st.booleans())
    def retry_changed(self, data: st.DataObject, batch: bool) -> None:
        """A stored event's id with another body: 422 naming the id, nothing written."""
        original = self.model.events[data.draw(st.sampled_from(self.model.log))].body
        changed = copy.deepcopy(original)
        changed["quote"] = f"{original.get('quote', '')} (corrected {uuid.uuid4().hex[:6]})"
        if batch:
            self._send(Request(events=(self._new_event(0, 0), changed), batch=True))
        else:
            self._send(Request(events=(changed,)))

    @precondition(lambda self: self.model.log)
    @rule(data=st.data(), place=st.integers(0, PLACES_PER_EXAMPLE - 1))
    def retry_mixed(self, data: st.DataObject, place: int) -> None:
        """A batch of a stored event (same body) and a new one: 422 on ``events``."""
        stored = self.model.events[data.draw(st.sampled_from(self.model.log))].body
        self._send(Request(events=(stored, self._new_event(place, 1)), batch=True))

    # --- reading -------------------------------------------------------------------------

    @precondition(lambda self: self.model.log)
    @rule(data=st.data())
    def read_event(self, data: st.DataObject) -> None:
        """GET /v1/events/{id}: the event at the position and place version of its receipt."""
        stored = self.model.events[data.draw(st.sampled_from(self.model.log))]
        answer = self.client.get(f"/v1/events/{stored.body['id']}")
        assert answer.status_code == 200, answer.text
        event = answer.json()["event"]
        assert event["id"] == stored.body["id"]
        assert event["position"] == stored.position
        assert event["place"] == stored.place
        assert event["place_version"] == stored.place_version
        assert event["commit_position"] == stored.commit_position
        assert event["event"]["side"] == stored.body["side"]

    @rule()
    def read_unknown_event(self) -> None:
        """An id the log never saw: 404 naming ``event_id``."""
        answer = self.client.get(f"/v1/events/{uuid.uuid4()}")
        assert answer.status_code == 404
        assert answer.json()["field"] == "event_id"

    @rule(place=st.none() | st.integers(0, PLACES_PER_EXAMPLE - 1), skip=st.integers(0, 40))
    def replay(self, place: int | None, skip: int) -> None:
        """GET /v1/events after a position, optionally for one place: the model's events in
        log order, all on one page (no ``next_cursor``)."""
        after = self.model.base + min(skip, len(self.model.log))
        query: dict[str, str | int] = {"after": after, "limit": 1000}
        if place is not None:
            query["place"] = self.places[place]
        answer = self.client.get("/v1/events", params=query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        expected = [
            self.model.events[i]
            for i in self.model.log[after - self.model.base :]
            if place is None or self.model.events[i].place == self.places[place]
        ]
        assert [e["id"] for e in page["events"]] == [s.body["id"] for s in expected]
        assert [e["position"] for e in page["events"]] == [s.position for s in expected]
        assert page["next_cursor"] is None
        assert page["next"] is None

    @rule(place=st.integers(0, PLACES_PER_EXAMPLE - 1))
    def place_version(self, place: int) -> None:
        """GET /v1/places/{id}: 404 before its first event, then its version and positions."""
        place_id = self.places[place]
        answer = self.client.get(f"/v1/places/{place_id}")
        version = self.model.version(place_id)
        if version == 0:
            assert answer.status_code == 404, answer.text
            return
        assert answer.status_code == 200, answer.text
        detail = answer.json()
        mine = [s for s in self.model.events.values() if s.place == place_id]
        assert detail["version"] == version
        assert detail["first_position"] == min(s.position for s in mine)
        assert detail["last_position"] == max(s.position for s in mine)

    @rule(
        place=st.integers(0, PLACES_PER_EXAMPLE - 1),
        day=st.integers(-1, 40),
        known=st.none() | st.integers(0, 200),
    )
    def state_at(self, place: int, day: int, known: int | None) -> None:
        """GET /v1/places/{id}?valid_at=D&known_at=position:N: the side of the latest capture
        on or before D among the commits ending at or before N; no segment before the first."""
        place_id = self.places[place]
        if self.model.version(place_id) == 0:
            return
        moment = FIRST_DAY + timedelta(days=day)
        query = {"valid_at": moment.isoformat()}
        known_position = self.model.head
        if known is not None:
            known_position = self.model.base + min(known, len(self.model.log))
            query["known_at"] = f"position:{known_position}"
        answer = self.client.get(f"/v1/places/{place_id}", params=query)
        assert answer.status_code == 200, answer.text
        detail = answer.json()
        has_segment, controller = self.model.controller(place_id, moment, known_position)
        segment = detail["segment"]
        if not has_segment:
            assert segment is None, detail
            return
        assert segment is not None, (detail, query)
        assert segment["controller"] == controller, (detail, query)
        assert segment["status"] == "controlled"
        assert segment["disputed"] is False

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def log_matches(self) -> None:
        """The log after the example's start holds the model's events, in its order, at
        dense positions, and each event's place version counts that place's events so far."""
        type(self).checks += 1
        answer = self.client.get("/v1/events", params={"after": self.model.base, "limit": 1000})
        assert answer.status_code == 200, answer.text
        events = answer.json()["events"]
        assert [e["id"] for e in events] == self.model.log
        assert [e["position"] for e in events] == list(
            range(self.model.base + 1, self.model.head + 1)
        )
        counted: dict[str, int] = {}
        for event in events:
            counted[event["place"]] = counted.get(event["place"], 0) + 1
            assert event["place_version"] == counted[event["place"]]
        assert counted == {p: v for p, v in self.model.versions.items() if v}


async def _admin_key(app_settings: Settings) -> str:
    pool = await create_owner_pool(app_settings)
    try:
        _, key = await KeyStore(pool).create("model-admin", "admin")
    finally:
        await pool.close()
    return key


@pytest.fixture
def sync_client(settings: Settings) -> Iterator[TestClient[Litestar]]:
    """A sync client on the real app (its own loop, lifespan included), with an admin key."""
    key = asyncio.run(_admin_key(settings))
    with TestClient(app=create_app(settings)) as client:
        client.headers["authorization"] = f"Bearer {key}"
        yield client


def test_api_follows_the_model(sync_client: TestClient[Litestar]) -> None:
    """Appends (single, batch; right, stale, absent expectations), retries, reads, replays,
    place versions and state at a date: every answer is the model's, every step."""
    LogMachine.client = sync_client
    LogMachine.examples = LogMachine.appends = LogMachine.checks = 0
    LogMachine.statuses = Counter()
    run_state_machine_as_test(
        LogMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    print(
        f"model test: {LogMachine.examples} examples, {LogMachine.checks} states checked "
        f"against the model, {LogMachine.appends} POSTs predicted "
        f"(by status: {dict(sorted(LogMachine.statuses.items()))}), divergences: 0"
    )
    # Every kind of answer the model predicts was met at least once.
    assert set(LogMachine.statuses) == {200, 201, 409, 422}, LogMachine.statuses
    assert LogMachine.examples >= 1
