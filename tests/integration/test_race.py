"""Concurrency against the real PostgreSQL (DESIGN 6: one appender at a time, dense positions,
commit order is position order, optimistic concurrency per place).

Several "processes" are simulated by several GroupCommitters, each on its own pool, so that
their group commits contend for the head lock in the database, as separate API processes do.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from contracts.responses import Receipt
from service.domain.append import AppendRequest
from service.domain.errors import FrontlineError, WrongExpectedVersion
from service.settings import Settings
from service.store.appender import GroupCommitter
from service.store.db import create_pool
from service.store.events import EventFilter, EventStore
from tests.integration.helpers import Conn, check_chain, event_rows, request
from tests.payloads import at_place

PROCESSES: Final = 4
WRITERS_PER_PROCESS: Final = 8
WRITERS: Final = PROCESSES * WRITERS_PER_PROCESS
ROUNDS: Final = 200
VERSIONS: Final = 8
RACED_PLACE: Final = "sy-tabqa-airbase"


@dataclass(slots=True)
class Process:
    """One simulated API process: its own pool, store and group committer."""

    pool: asyncpg.Pool
    store: EventStore
    committer: GroupCommitter


@pytest.fixture
async def processes(settings: Settings) -> AsyncIterator[list[Process]]:
    """Four processes on the test's database, each with its own pool of 8 connections."""
    started: list[Process] = []
    for _ in range(PROCESSES):
        pool = await create_pool(settings.with_(pool_min=1, pool_max=WRITERS_PER_PROCESS))
        store = EventStore(pool)
        committer = GroupCommitter(store, settings.group_max)
        committer.start()
        started.append(Process(pool, store, committer))
    yield started
    for process in started:
        await process.committer.stop()
        await process.pool.close()


@dataclass(slots=True)
class Follower:
    """A reader following the log with ``after=last seen``, checking every page it gets."""

    store: EventStore
    where: EventFilter = field(default_factory=EventFilter)
    last: int = 0
    last_version: int = 0
    seen: list[uuid.UUID] = field(default_factory=list)
    pages_while_writing: int = 0

    async def follow(self, writing_done: asyncio.Event) -> None:
        """Read until the writers are done and a page read after that is empty."""
        while True:
            done_before_read = writing_done.is_set()
            page = await self.store.page(self.last, 500, self.where)
            for event in page:
                if self.where.place is None:
                    assert event.position == self.last + 1, (
                        f"the reader saw position {event.position} right after {self.last}: "
                        "a later commit became visible before an earlier one"
                    )
                else:
                    assert event.position > self.last
                    assert event.place_version == self.last_version + 1, (
                        f"the place reader saw version {event.place_version} right after "
                        f"{self.last_version}"
                    )
                    self.last_version = event.place_version
                self.last = event.position
                self.seen.append(event.id)
            if page and not done_before_read:
                self.pages_while_writing += 1
            if not page:
                if done_before_read:
                    return
                await asyncio.sleep(0.002)


async def test_a_follower_sees_every_commit_once_in_order(
    processes: list[Process], settings: Settings, owner: Conn
) -> None:
    """32 writers in 4 processes each append 200 events while readers follow the log with
    ``after=last seen``: the readers never see position p+1 before p (no gap is ever
    observed mid-way), and in the end each has seen every committed event exactly once, in
    position order; positions are dense, each writer's place has versions 1..200, and the
    hash chain holds."""
    reader_pool = await create_pool(settings.with_(pool_min=1, pool_max=2))
    try:
        reader_store = EventStore(reader_pool)
        follower = Follower(reader_store)
        place_follower = Follower(reader_store, EventFilter(place="sy-w-0"))
        writing_done = asyncio.Event()
        receipts: list[list[Receipt]] = [[] for _ in range(WRITERS)]

        async def writer(number: int) -> None:
            committer = processes[number % PROCESSES].committer
            for _ in range(ROUNDS):
                receipts[number] += await committer.append(request(at_place(f"sy-w-{number}")))

        readers = [
            asyncio.create_task(follower.follow(writing_done)),
            asyncio.create_task(place_follower.follow(writing_done)),
        ]
        try:
            await asyncio.gather(*(writer(n) for n in range(WRITERS)))
        finally:
            writing_done.set()
        await asyncio.gather(*readers)
    finally:
        await reader_pool.close()

    total = WRITERS * ROUNDS
    everything = [r for per_writer in receipts for r in per_writer]
    by_position = sorted(everything, key=lambda r: r.position)
    assert [r.position for r in by_position] == list(range(1, total + 1))
    assert follower.seen == [r.id for r in by_position]
    assert place_follower.seen == [r.id for r in receipts[0]]
    assert follower.pages_while_writing >= 10, "the reader never read while writers wrote"
    for per_writer in receipts:
        assert [r.place_version for r in per_writer] == list(range(1, ROUNDS + 1))
        assert [r.position for r in per_writer] == sorted(r.position for r in per_writer)
    # Every commit is one process's group, and the processes' commits interleave.
    process_of_commit: dict[int, set[int]] = {}
    for number, per_writer in enumerate(receipts):
        for r in per_writer:
            process_of_commit.setdefault(r.commit_position, set()).add(number % PROCESSES)
    assert all(len(owners) == 1 for owners in process_of_commit.values())
    order = [next(iter(process_of_commit[c])) for c in sorted(process_of_commit)]
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches >= ROUNDS, f"the processes hardly contended ({switches} switches)"
    rows = await event_rows(owner)
    assert len(rows) == total
    check_chain(rows)


# --- optimistic concurrency under contention -------------------------------------------------


Outcome = list[Receipt] | FrontlineError


async def _race(attempts: list[Callable[[AppendRequest], Awaitable[Outcome]]], owner: Conn) -> None:
    """Every attempt tries to append at RACED_PLACE expecting the version the place is at;
    exactly one wins each version, every other gets WrongExpectedVersion with both numbers."""
    for version in range(VERSIONS):
        requests = [
            request(at_place(RACED_PLACE), expect=[(RACED_PLACE, version)]) for _ in attempts
        ]
        outcomes = await asyncio.gather(
            *(attempt(r) for attempt, r in zip(attempts, requests, strict=True))
        )
        won = [o for o in outcomes if isinstance(o, list)]
        lost = [o for o in outcomes if isinstance(o, WrongExpectedVersion)]
        assert len(won) == 1, f"version {version}: {len(won)} writers won"
        assert len(lost) == len(attempts) - 1, f"version {version}: {outcomes!r}"
        assert won[0][0].place_version == version + 1
        assert {(e.place, e.expected, e.actual) for e in lost} == {
            (RACED_PLACE, version, version + 1)
        }
    versions = await owner.fetch(
        "SELECT place_version FROM events WHERE place_id = $1 ORDER BY position", RACED_PLACE
    )
    assert [r["place_version"] for r in versions] == list(range(1, VERSIONS + 1))
    assert await owner.fetchval("SELECT count(*) FROM events") == VERSIONS
    assert await owner.fetchval("SELECT version FROM places WHERE id = $1", RACED_PLACE) == (
        VERSIONS
    )


def _through_committer(committer: GroupCommitter) -> Callable[[AppendRequest], Awaitable[Outcome]]:
    async def attempt(req: AppendRequest) -> Outcome:
        try:
            return await committer.append(req)
        except FrontlineError as error:
            return error

    return attempt


def _own_transaction(store: EventStore) -> Callable[[AppendRequest], Awaitable[Outcome]]:
    async def attempt(req: AppendRequest) -> Outcome:
        (outcome,) = await store.append_group([req])
        return outcome

    return attempt


async def test_one_writer_wins_each_version_across_processes(
    processes: list[Process], owner: Conn
) -> None:
    """32 writers in 4 processes (group commits contending for the head lock) race to
    append at the same place version: exactly one wins each version, the 31 others get
    WrongExpectedVersion (a 409) with the place, the expected and the actual version."""
    await _race(
        [_through_committer(processes[n % PROCESSES].committer) for n in range(WRITERS)], owner
    )


async def test_one_writer_wins_each_version_in_separate_transactions(
    processes: list[Process], owner: Conn
) -> None:
    """32 writers, each in its own transaction (no group commit to order them in memory),
    race to append at the same place version: the head lock lets exactly one win."""
    await _race([_own_transaction(processes[n % PROCESSES].store) for n in range(WRITERS)], owner)


async def test_one_post_wins_each_version_and_the_others_get_409(
    client: AsyncTestClient[Litestar], owner: Conn
) -> None:
    """32 concurrent POSTs with the same ``expect`` version: one 201, and 31 answers 409 as
    RFC 9457 problems naming the place, the expected and the actual version."""
    for version in range(3):

        async def post(version: int = version) -> tuple[int, dict[str, Any]]:
            body = {
                "events": [at_place(RACED_PLACE)],
                "expect": [{"place": RACED_PLACE, "version": version}],
            }
            response = await client.post(
                "/v1/events",
                content=msgspec.json.encode(body),
                headers={"content-type": "application/json"},
            )
            return response.status_code, response.json()

        answers = await asyncio.gather(*(post() for _ in range(WRITERS)))
        statuses = sorted(status for status, _ in answers)
        assert statuses == [201] + [409] * (WRITERS - 1)
        for status, body in answers:
            if status == 409:
                assert (body["place"], body["expected"], body["actual"]) == (
                    RACED_PLACE,
                    version,
                    version + 1,
                )
                assert body["status"] == 409
    assert await owner.fetchval("SELECT count(*) FROM events") == 3
