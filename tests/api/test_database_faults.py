"""The service when PostgreSQL stops answering: the app connects through the fault proxy
(``reliability.fault_proxy.FaultProxy``), which resets or blackholes its connections; every
answer is then a 503 problem, in bounded time, never a 500 and never a hang, and the service
serves again once the proxy heals."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from contracts.events import event_decoder
from reliability.fault_proxy import DB_TIMEOUT, FaultProxy, Mode, serve_through
from service.app import create_app
from service.domain.append import AppendRequest
from service.domain.records import prepare_event
from service.projections.timelines import TimelineProjector
from service.settings import Settings
from service.store.db import create_pool
from service.store.events import EventStore
from service.store.keys import KeyStore
from service.usecases.readiness import READY_TIMEOUT
from tests.api.conftest import assert_problem

Client = AsyncTestClient[Litestar]


class ThreadedProxy:
    """The proxy on an event loop of its own thread: Litestar's test client runs the app in
    another thread and blocks the test's loop while the app starts, so a proxy on the test's
    loop could not answer the app's first connections."""

    def __init__(self, url: str) -> None:
        self.proxy = FaultProxy.for_url(url)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._call(self.proxy.start())

    def _call(self, work: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=30)

    def url(self, upstream: str) -> str:
        return self.proxy.url(upstream)

    def set_mode(self, mode: Mode) -> None:
        async def switch() -> None:
            self.proxy.set_mode(mode)

        self._call(switch())

    def close(self) -> None:
        self._call(self.proxy.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture
def proxy(fresh_db: str) -> Iterator[ThreadedProxy]:
    """A fault proxy in front of the test's database, passing bytes until told otherwise."""
    started = ThreadedProxy(fresh_db)
    yield started
    started.close()


def _app(fresh_db: str, proxy: ThreadedProxy, db_timeout: float) -> Litestar:
    settings = Settings(
        database_url=proxy.url(fresh_db),
        migrate_database_url=fresh_db,
        log_format="json",
        db_timeout=db_timeout,
    )
    return create_app(settings)


@pytest.fixture
async def keys(owner_pool: asyncpg.Pool) -> KeyStore:
    """Keys made straight in the database (as the owner), not through the proxy."""
    return KeyStore(owner_pool)


def _event(n: int, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": "control",
        "place": {"id": f"sy-fault-{n % 3}", "name": f"Fault {n % 3}"},
        "occurred": {"start": f"2017-06-{1 + n % 28:02d}", "precision": "day"},
        "source": {"name": "Fault test", "reliability": "C"},
        "side": "isis",
    }


async def _timed(request: Any) -> tuple[Any, float]:
    began = time.monotonic()
    response = await request
    return response, time.monotonic() - began


async def test_ready_answers_503_in_bounded_time_while_blackholed(
    fresh_db: str, proxy: ThreadedProxy
) -> None:
    """/ready says 503 within READY_TIMEOUT (plus slack) while the database swallows every
    byte, even when the statement timeout is far longer (a minute): it does not wait for the
    stuck query to unwind (asyncio.wait_for did, and /ready hung). It says 200 once healed."""
    async with AsyncTestClient(app=_app(fresh_db, proxy, db_timeout=60)) as client:
        assert (await client.get("/ready")).status_code == 200
        proxy.set_mode(Mode.BLACKHOLE)
        response, elapsed = await _timed(client.get("/ready"))
        body = assert_problem(response, 503)
        assert "did not answer" in body["detail"]
        assert elapsed < READY_TIMEOUT + 2
        proxy.set_mode(Mode.PASS)
        deadline = time.monotonic() + 10
        while (await client.get("/ready")).status_code != 200:
            assert time.monotonic() < deadline, "no recovery after healing"
            await asyncio.sleep(0.1)


async def test_a_key_checked_while_the_database_is_lost_is_503_not_500(
    fresh_db: str, proxy: ThreadedProxy, keys: KeyStore
) -> None:
    """A key the service has not seen yet must be looked up; with every connection reset,
    the check before routing answers a 503 problem (it was a 500), and the same key works
    once the proxy heals."""
    _, key = await keys.create("fault-reader", "read")
    headers = {"authorization": f"Bearer {key}"}
    async with AsyncTestClient(app=_app(fresh_db, proxy, db_timeout=5)) as client:
        proxy.set_mode(Mode.RESET)
        body = assert_problem(await client.get("/v1/events", headers=headers), 503)
        assert "unavailable" in body["detail"]
        proxy.set_mode(Mode.PASS)
        assert (await client.get("/v1/events", headers=headers)).status_code == 200


async def test_a_read_while_the_database_is_lost_is_503_not_500(
    fresh_db: str, proxy: ThreadedProxy, keys: KeyStore
) -> None:
    """A read whose connection is reset under it (its key already checked and remembered)
    answers a 503 problem, not a 500: the driver's connection errors are the database being
    unavailable, not a bug."""
    _, key = await keys.create("fault-reader", "read")
    headers = {"authorization": f"Bearer {key}"}
    async with AsyncTestClient(app=_app(fresh_db, proxy, db_timeout=5)) as client:
        assert (await client.get("/v1/events", headers=headers)).status_code == 200
        proxy.set_mode(Mode.RESET)
        for path in ("/v1/events?limit=5", "/v1/state?valid_at=2017-06-05"):
            assert_problem(await client.get(path, headers=headers), 503)


async def test_a_write_while_blackholed_is_503_in_bounded_time_and_its_retry_stores_once(
    fresh_db: str, proxy: ThreadedProxy, keys: KeyStore, owner: asyncpg.Connection
) -> None:
    """A POST while the database swallows every byte answers 503 within a few statement
    timeouts (FRONTLINE_DB_TIMEOUT; without one it hung for good), and the same event posted
    again after healing is stored, once."""
    _, key = await keys.create("fault-writer", "ingest")
    headers = {"authorization": f"Bearer {key}"}
    event = _event(1)
    async with AsyncTestClient(app=_app(fresh_db, proxy, db_timeout=1)) as client:
        assert (await client.post("/v1/events", json=_event(0), headers=headers)).is_success
        proxy.set_mode(Mode.BLACKHOLE)
        response, elapsed = await _timed(client.post("/v1/events", json=event, headers=headers))
        assert_problem(response, 503)
        # About 3 s here: the statement's timeout, the cancel's (each 1 s), then the
        # appender's is-it-reachable read (PROBE_TIMEOUT). Without a timeout it hung for
        # good; the margin is for a loaded 2-core CI machine.
        assert elapsed < 10
        proxy.set_mode(Mode.PASS)
        deadline = time.monotonic() + 10
        while (
            retry := await client.post("/v1/events", json=event, headers=headers)
        ).status_code == 503:
            assert time.monotonic() < deadline, "no recovery after healing"
            await asyncio.sleep(0.1)
        assert retry.status_code in (200, 201), retry.text
    assert (
        await owner.fetchval("SELECT count(*) FROM events WHERE id = $1", uuid.UUID(event["id"]))
        == 1
    )


def _write_until(url: str, stop: threading.Event, written: list[int]) -> None:
    """Append events one at a time, as another process would, until ``stop`` is set."""

    async def write() -> None:
        settings = Settings(database_url=url, migrate_database_url=url, log_format="json")
        pool = await create_pool(settings)
        try:
            store = EventStore(pool, TimelineProjector())
            n = 0
            while not stop.is_set():
                event = prepare_event(event_decoder.decode(msgspec.json.encode(_event(n))))
                await store.append_group([AppendRequest(events=(event,))])
                n += 1
            written.append(n)
        finally:
            await pool.close()

    asyncio.run(write())


async def test_ready_stays_200_while_events_are_written(fresh_db: str, client: Client) -> None:
    """/ready reads the head, then the projections' position; a commit landing between the
    two reads is not a lag (it said 503 under write load, when it compared them with !=)."""
    stop = threading.Event()
    written: list[int] = []
    writers = [
        threading.Thread(target=_write_until, args=(fresh_db, stop, written)) for _ in range(2)
    ]
    for writer in writers:
        writer.start()
    try:
        answers = [(await client.get("/ready")).status_code for _ in range(100)]
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=30)
    assert sum(written) > 0
    assert answers == [200] * 100


async def test_many_writes_while_blackholed_all_answer_503_within_a_few_timeouts(
    fresh_db: str, keys: KeyStore, tmp_path: Path
) -> None:
    """40 POSTs queued while the database swallows every byte all answer 503 within a few
    statement timeouts (``frontline serve`` behind the proxy): when a group fails because
    the database is unreachable, the requests queued behind it fail with it, instead of
    waiting one timeout per writer attempt (40 requests, 2 writers: about a minute)."""
    _, key = await keys.create("fault-crowd", "ingest")
    proxy = FaultProxy.for_url(fresh_db)
    await proxy.start()
    service = await serve_through(proxy.url(fresh_db), tmp_path)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{service.port}",
            headers={"authorization": f"Bearer {key}"},
            timeout=120,
        ) as client:
            assert (await client.post("/v1/events", json=_event(0))).is_success
            proxy.set_mode(Mode.BLACKHOLE)
            began = time.monotonic()
            responses = await asyncio.gather(
                *(client.post("/v1/events", json=_event(n)) for n in range(1, 41))
            )
            elapsed = time.monotonic() - began
            proxy.set_mode(Mode.PASS)
    finally:
        service.stop()
        await proxy.close()
    for response in responses:
        assert_problem(response, 503)
    # About 5 s here (DB_TIMEOUT is 2 s): a statement's timeout and its cancel's, then the
    # is-it-reachable read (PROBE_TIMEOUT). Without draining the queue it was one timeout
    # per writer attempt: about 40 s. The margin is for a loaded 2-core CI machine.
    assert elapsed < 8 * DB_TIMEOUT
