"""Reads from a streaming replica: a real primary and a real replica made by ``pg_basebackup
-R``, the real app between them (issue 18, DESIGN section 8).

One primary and one replica serve the whole module (starting them takes a few seconds); each
test has a database of its own on the primary, which the replica receives by replication.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from bench.replica import ReplicatedPostgres, on_socket, replay
from service.app import create_app
from service.settings import Settings
from service.store import migrate
from service.store.db import EMBEDDED_LOGIN, ensure_login_role, with_user
from service.store.keys import KeyStore
from tests.api.conftest import assert_problem
from tests.conftest import with_database
from tests.payloads import at_place

TEMPLATE = "frontline_replica_template"
VALID = "2017-07-01"

Client = AsyncTestClient[Litestar]


@pytest.fixture(scope="module")
def cluster() -> Iterator[ReplicatedPostgres]:
    """A primary with a migrated template database, and a streaming replica of it."""
    servers = ReplicatedPostgres(Path(tempfile.mkdtemp(prefix="frontline-replica-")))
    try:
        servers.start()
        template = with_database(servers.primary_url, TEMPLATE)
        asyncio.run(_admin(servers.primary_url, f"CREATE DATABASE {TEMPLATE}"))
        migrate.upgrade(template)
        asyncio.run(ensure_login_role(servers.primary_url, EMBEDDED_LOGIN, "frontline_app"))
        yield servers
    finally:
        servers.close()


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
async def database(cluster: ReplicatedPostgres) -> AsyncIterator[str]:
    """A fresh migrated database on the primary (the owner's URL), there on the replica too."""
    name = "frontline_r_" + uuid.uuid4().hex[:12]
    await _admin(cluster.primary_url, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    url = with_database(cluster.primary_url, name)
    deadline = time.monotonic() + 30
    while True:  # the replica replays the CREATE DATABASE
        try:
            conn = await asyncpg.connect(on_socket(url, cluster.replica_dir))
        except asyncpg.InvalidCatalogNameError:
            assert time.monotonic() < deadline, "the replica never received the database"
            await asyncio.sleep(0.05)
            continue
        await conn.close()
        break
    yield url
    await _admin(cluster.primary_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@asynccontextmanager
async def serving(cluster: ReplicatedPostgres, url: str, **settings: Any) -> AsyncIterator[Client]:
    """The app on the primary's database with the replica in ``FRONTLINE_READ_URLS``, and a
    client holding an admin key."""
    configured = Settings(
        database_url=with_user(url, EMBEDDED_LOGIN),
        migrate_database_url=url,
        read_urls=with_user(on_socket(url, cluster.replica_dir), EMBEDDED_LOGIN),
        log_format="json",
        **{"read_check": 0.2, "read_wait": 0.5, "read_max_lag": 60.0, **settings},
    )
    owner = await asyncpg.create_pool(url, min_size=1, max_size=1)
    try:
        _, key = await KeyStore(owner).create("replica-test", "admin")
    finally:
        await owner.close()
    async with AsyncTestClient(app=create_app(configured)) as client:
        client.headers["authorization"] = f"Bearer {key}"
        yield client


async def _append(client: Client, place: str) -> int:
    response = await client.post("/v1/events", json=at_place(place))
    assert response.status_code == 201, response.text
    position: int = response.json()["receipts"][0]["position"]
    return position


def _served(response: Any) -> tuple[str, int]:
    return response.headers["frontline-served-by"], int(response.headers["frontline-served-at"])


async def _replica_status(client: Client) -> dict[str, Any]:
    ready = await client.get("/ready")
    assert ready.status_code == 200, ready.text
    (replica,) = ready.json()["replicas"]
    assert replica["name"] == "replica-1"
    return dict(replica)


async def _until(client: Client, in_rotation: bool, seconds: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        replica = await _replica_status(client)
        if replica["in_rotation"] is in_rotation:
            return replica
        assert time.monotonic() < deadline, replica
        await asyncio.sleep(0.1)


async def test_reads_are_served_by_the_replica_and_say_the_position(
    cluster: ReplicatedPostgres, database: str
) -> None:
    """With a replica configured, the front, the places and the log's pages are answered by
    it (``Frontline-Served-By: replica-1``), each answer naming the position the replica
    had applied (``Frontline-Served-At``); ``min_position`` of a write the replica has
    replayed is answered by the replica too, one past the primary's head by the primary at
    once (no wait for what no replica can have), and ``/ready`` and ``/metrics`` show its
    lag. (The wait is 10 s here, so "no wait" is told from a wait by a wide margin even on a
    loaded machine.)"""
    async with serving(cluster, database, read_wait=10.0) as client:
        position = await _append(client, "sy-maskanah")
        state = await client.get("/v1/state", params={"valid_at": VALID, "min_position": position})
        assert state.status_code == 200, state.text
        served, at = _served(state)
        assert served == "replica-1"
        assert at >= position
        assert [item["place"]["id"] for item in state.json()["items"]] == ["sy-maskanah"]
        started = time.monotonic()
        future = await client.get("/v1/places/sy-maskanah", params={"min_position": at + 1000})
        assert future.status_code == 200
        assert _served(future)[0] == "primary"
        assert time.monotonic() - started < 5.0  # no replica can have it: no 10 s wait
        for path in ("/v1/places/sy-maskanah", "/v1/events", "/v1/sides"):
            answer = await client.get(path)
            assert answer.status_code == 200, answer.text
            assert _served(answer)[0] == "replica-1"
        # Writes, the head and the operations stay on the primary: no routing header there.
        head = await client.get("/v1/audit/head")
        assert head.status_code == 200
        assert "frontline-served-by" not in head.headers
        replica = await _replica_status(client)
        assert replica["in_rotation"] is True
        assert replica["applied_position"] >= position
        assert replica["lag_positions"] == 0
        metrics = (await client.get("/metrics")).text
        assert 'frontline_replica_lag_seconds{replica="replica-1"} 0.0' in metrics
        assert 'frontline_replica_in_rotation{replica="replica-1"} 1.0' in metrics
        assert 'frontline_reads_total{node="replica-1"}' in metrics


async def test_read_your_writes_waits_for_the_replica_then_falls_back_to_the_primary(
    cluster: ReplicatedPostgres, database: str
) -> None:
    """While the replica's replay is paused, a read with ``min_position`` (query or header)
    of a newer write waits ``FRONTLINE_READ_WAIT`` and is then answered by the primary, with
    the write in it; a read without it is answered by the replica, without the write. A
    pinned answer at a position the replica has applied is served by it as immutable; one
    pinned beyond it comes from the primary. Once replay resumes, the replica answers the
    ``min_position`` read itself."""
    replica_owner = on_socket(database, cluster.replica_dir)
    async with serving(cluster, database, read_wait=0.5) as client:
        before = await _append(client, "sy-before")
        warm = await client.get("/v1/places/sy-before", params={"min_position": before})
        assert _served(warm)[0] == "replica-1"
        await replay(replica_owner, paused=True)
        try:
            after = await _append(client, "sy-after")
            started = time.monotonic()
            mine = await client.get("/v1/places/sy-after", params={"min_position": after})
            waited = time.monotonic() - started
            assert mine.status_code == 200, mine.text
            served, at = _served(mine)
            assert served == "primary"
            assert at >= after
            assert waited >= 0.5
            by_header = await client.get(
                "/v1/places/sy-after", headers={"frontline-min-position": str(after)}
            )
            assert by_header.status_code == 200
            assert _served(by_header)[0] == "primary"
            stale = await client.get("/v1/places/sy-after")
            assert_problem(stale, 404)
            assert _served(stale) == ("replica-1", before)

            old = {"valid_at": VALID, "known_at": f"position:{before}"}
            pinned = await client.get("/v1/state", params=old)
            assert _served(pinned)[0] == "replica-1"
            assert "immutable" in pinned.headers["cache-control"]
            assert [i["place"]["id"] for i in pinned.json()["items"]] == ["sy-before"]
            new = {"valid_at": VALID, "known_at": f"position:{after}"}
            beyond = await client.get("/v1/state", params=new)
            assert _served(beyond)[0] == "primary"
            assert "immutable" in beyond.headers["cache-control"]
            assert {i["place"]["id"] for i in beyond.json()["items"]} == {"sy-before", "sy-after"}
        finally:
            await replay(replica_owner, paused=False)
        caught_up = await client.get("/v1/places/sy-after", params={"min_position": after})
        assert caught_up.status_code == 200
        assert _served(caught_up)[0] == "replica-1"


async def test_a_replica_lagging_past_the_bound_leaves_the_rotation_and_comes_back(
    cluster: ReplicatedPostgres, database: str
) -> None:
    """A replica whose oldest unapplied commit is older than ``FRONTLINE_READ_MAX_LAG`` is
    taken out of the rotation (``/ready`` and ``/metrics`` say so, reads go to the primary
    and see the newest writes); once it catches up it answers reads again."""
    replica_owner = on_socket(database, cluster.replica_dir)
    async with serving(cluster, database, read_max_lag=0.5, read_check=0.1) as client:
        await replay(replica_owner, paused=True)
        try:
            position = await _append(client, "sy-lagging")
            replica = await _until(client, in_rotation=False)
            assert replica["lag_seconds"] > 0.5
            assert replica["lag_positions"] >= 1
            assert replica["applied_position"] < position
            metrics = (await client.get("/metrics")).text
            assert 'frontline_replica_in_rotation{replica="replica-1"} 0.0' in metrics
            read = await client.get("/v1/places/sy-lagging")
            assert read.status_code == 200, read.text
            assert _served(read)[0] == "primary"
        finally:
            await replay(replica_owner, paused=False)
        replica = await _until(client, in_rotation=True)
        assert replica["applied_position"] >= position
        read = await client.get("/v1/places/sy-lagging")
        assert _served(read)[0] == "replica-1"


async def test_reads_go_on_from_the_primary_while_the_replica_is_stopped(
    cluster: ReplicatedPostgres, database: str
) -> None:
    """With the replica stopped, every read is answered (no 5xx) by the primary: the first
    one that meets the dead replica is answered again on the primary, and the replica leaves
    the rotation (``/ready`` stays 200 and names the error). Started again, it returns."""
    async with serving(cluster, database) as client:
        position = await _append(client, "sy-stopped")
        await client.get("/v1/places/sy-stopped", params={"min_position": position})
        cluster.stop_replica()
        try:
            for _ in range(10):
                for path in ("/v1/places/sy-stopped", "/v1/events", "/v1/disputes"):
                    answer = await client.get(path)
                    assert answer.status_code == 200, answer.text
                    assert _served(answer)[0] == "primary"
            replica = await _until(client, in_rotation=False)
            assert replica["error"]
        finally:
            cluster.start_replica()
        await _until(client, in_rotation=True)
        again = await client.get("/v1/places/sy-stopped")
        assert again.status_code == 200
        assert _served(again)[0] == "replica-1"


async def test_a_replica_down_at_start_up_does_not_stop_the_service(
    cluster: ReplicatedPostgres, database: str
) -> None:
    """The service starts while its replica is down: it is ready, the primary answers every
    read, ``/ready`` names the replica's error; once the replica is up, a check opens its pool
    and it answers reads."""
    cluster.stop_replica()
    try:
        async with serving(cluster, database) as client:
            replica = await _replica_status(client)
            assert replica["in_rotation"] is False
            assert replica["error"]
            read = await client.get("/v1/events")
            assert read.status_code == 200, read.text
            assert _served(read)[0] == "primary"
            cluster.start_replica()
            await _until(client, in_rotation=True)
            read = await client.get("/v1/events")
            assert _served(read)[0] == "replica-1"
    finally:
        if not (cluster.replica_dir / "postmaster.pid").exists():
            cluster.start_replica()


async def test_min_position_that_is_not_a_position_is_a_422_naming_it(client: Client) -> None:
    """``min_position`` and ``Frontline-Min-Position`` take a log position; anything else
    is a 422 problem naming the one that was wrong, on every routed read; a route that
    never reads from a replica (a write) does not take ``min_position`` at all."""
    bad = await client.get("/v1/state", params={"valid_at": VALID, "min_position": "-1"})
    assert_problem(bad, 422, "min_position")
    bad = await client.get("/v1/places/x", params={"min_position": "2e3"})
    assert_problem(bad, 422, "min_position")
    bad = await client.get("/v1/events", headers={"frontline-min-position": "soon"})
    assert_problem(bad, 422, "Frontline-Min-Position")
    big = str(2**63)
    bad = await client.get("/v1/events", params={"min_position": big})
    assert_problem(bad, 422, "min_position")
    write = await client.post("/v1/events?min_position=1", json=at_place("sy-x"))
    assert_problem(write, 422, "min_position")


async def test_without_replicas_the_primary_answers_and_names_its_position(
    client: Client,
) -> None:
    """Without ``FRONTLINE_READ_URLS`` every read is the primary's, and still says so, with
    the position it had applied (at least that of a write just made, when ``min_position``
    names it), a HEAD as its GET; ``min_position`` changes who answers, never the answer: a
    pinned answer has the same ETag with it or without it."""
    response = await client.post("/v1/events", json=at_place("sy-alone"))
    position = response.json()["receipts"][0]["position"]
    read = await client.get("/v1/places/sy-alone", params={"min_position": position})
    assert read.status_code == 200, read.text
    assert _served(read) == ("primary", position)
    head = await client.head("/v1/places/sy-alone", params={"min_position": position})
    assert head.status_code == 200
    assert _served(head) == ("primary", position)
    ahead = await client.get("/v1/places/sy-alone", params={"min_position": position + 10})
    assert ahead.status_code == 200
    assert _served(ahead) == ("primary", position)
    pinned = {"valid_at": VALID, "known_at": f"position:{position}"}
    plain = await client.get("/v1/state", params=pinned)
    with_min = await client.get("/v1/state", params={**pinned, "min_position": position})
    assert plain.headers["etag"] == with_min.headers["etag"]
    assert plain.content == with_min.content
    assert "immutable" in with_min.headers["cache-control"]
