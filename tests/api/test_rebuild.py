"""POST /v1/admin/rebuild and the rebuild at start-up, over HTTP.

The service goes on while it rebuilds: /health, reads and POSTs answer while a rebuild is
held open at one of its stages (``tests/integration/test_rebuild.py: Gate``), reads answer
from the old rows (and name their policy and position) until the swap, appends are in the
rebuilt rows, and the result is the same rows as a rebuild done alone. A second rebuild is
a 409. Rows of another policy than the served one are rebuilt at start-up while serving.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import asyncpg
import httpx
import pytest
import uvicorn
from structlog.testing import capture_logs

from service.app import create_app
from service.domain.policy import SERVED
from service.projections.reads import FrontReader
from service.projections.timelines import TimelineProjector
from service.server import Server
from service.settings import Settings
from service.store.db import Connector
from tests.api.conftest import assert_problem
from tests.integration.test_rebuild import Gate
from tests.payloads import at_place, event_json

T = TypeVar("T")
Client = httpx.AsyncClient

STALE: Final = "credibility-v1" if SERVED.name != "credibility-v1" else "credibility-v0"
"""A policy the service does not serve (the one before it, when there was one)."""
QUICK: Final = 10.0
"""Seconds a request may take while a rebuild is held open (it must not wait for it)."""
ROWS: Final = (
    "SELECT place_id, valid_from, valid_to, known_from, known_to, controller, status, "
    "status_by, disputed, confidence, basis, body FROM segments "
    "ORDER BY place_id, valid_from, known_from"
)


async def quick(request: Awaitable[T]) -> T:
    """The request's answer, which must come while the rebuild is held (not after it)."""
    return await asyncio.wait_for(request, QUICK)


async def rows(owner: asyncpg.Connection) -> list[tuple[Any, ...]]:
    """Every row of ``segments``, every column, as the owner sees it."""
    return [tuple(r) for r in await owner.fetch(ROWS)]


@dataclass
class Served:
    """A served app: a client sending an admin key, and the app's projector."""

    client: Client
    projector: TimelineProjector

    async def rebuild_done(self) -> None:
        """Wait until the projector's background rebuild has ended."""
        for _ in range(1200):
            if self.projector.rebuilding is None:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the rebuild did not end")


@asynccontextmanager
async def serving(settings: Settings, admin_key: str, gate: Gate | None) -> AsyncIterator[Served]:
    """The real app behind a real uvicorn on loopback (requests then run concurrently, as in
    production), its projector's rebuilds held by ``gate``; a client sending an admin key."""
    projector = TimelineProjector(rebuild_workers=2, on_rebuild=gate)
    app = create_app(settings, projector=projector)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"authorization": f"Bearer {admin_key}"},
            timeout=120,
        ) as client:
            yield Served(client, projector)
    finally:
        if gate is not None:  # a failed test must not leave a rebuild held
            gate.release_all()
        server.should_exit = True
        await task


async def post(client: Client, *events: dict[str, Any]) -> list[dict[str, Any]]:
    """POST events as one batch; the receipts."""
    body: dict[str, Any] = {"events": list(events)} if len(events) > 1 else events[0]
    response = await quick(client.post("/v1/events", json=body))
    assert response.status_code == 201, response.text
    receipts: list[dict[str, Any]] = response.json()["receipts"]
    return receipts


async def state(client: Client, **params: str) -> dict[str, Any]:
    """GET /v1/state for 2017-06-05 (and ``params``)."""
    response = await quick(client.get("/v1/state", params={"valid_at": "2017-06-05", **params}))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def sdf_takes(place: str) -> dict[str, Any]:
    """A capture by the SDF on 2017-06-04, reported by a reliable neutral source: the SDF
    holds the place on 06-05 whatever came before."""
    return at_place(
        place,
        type="capture",
        side="sdf",
        opponent=None,
        occurred={"start": "2017-06-04"},
        source={"name": "Observer", "reliability": "A", "alignment": "neutral"},
        credibility=1,
        hedge="confirmed",
    )


def _some_events() -> list[dict[str, Any]]:
    return [
        event_json(),
        event_json(type="control", side="isis", opponent=None, source={"name": "Amaq"}),
        at_place("sy-raqqa", type="control", side="isis", opponent=None),
        at_place("sy-tabqa", occurred={"start": "2017-06-01", "precision": "week"}),
    ]


async def test_reads_health_and_posts_answer_while_a_rebuild_is_held_open(
    settings: Settings, admin_key: str, owner: asyncpg.Connection
) -> None:
    """With POST /v1/admin/rebuild held after its fold and again before its swap:
    /health, /ready, the state and a timeline answer at once, from the old rows (a row
    altered behind the service's back stays visible until the swap); POSTs answer 201 and
    show at once; a second rebuild is a 409 problem saying how far the first is. Released,
    the rebuild answers 200 with the head position; the altered row is gone, the events
    posted meanwhile are in the rows, and a rebuild done alone gives the same rows."""
    gate = Gate("catching-up", "swapping")
    async with serving(settings, admin_key, gate) as served:
        client = served.client
        for e in _some_events():
            await post(client, e)
        await owner.execute(
            "UPDATE segments SET body = jsonb_set(body::jsonb, '{confidence}', '99')::text "
            "WHERE place_id = 'sy-raqqa' AND known_to IS NULL"
        )
        rebuild = asyncio.ensure_future(client.post("/v1/admin/rebuild"))
        stages = (
            ("catching-up", "sy-deir", "catching up with the appends"),
            ("swapping", "sy-raqqa", "swapping its rows in"),
        )
        for stage, place, doing in stages:
            await gate.at(stage)
            assert (await quick(client.get("/health"))).status_code == 200
            assert (await quick(client.get("/ready"))).status_code == 200
            assert {
                i["place"]["id"]: i["segment"]["confidence"] for i in (await state(client))["items"]
            }["sy-raqqa"] == 99
            (receipt,) = await post(client, sdf_takes(place))
            page = await state(client)
            assert page["frame"]["known_position"] == receipt["position"]
            assert place in [i["place"]["id"] for i in page["items"]]
            timeline = await quick(client.get(f"/v1/places/{place}/timeline"))
            assert timeline.status_code == 200
            second = await quick(client.post("/v1/admin/rebuild"))
            body = assert_problem(second, 409)
            assert body["type"].endswith("/rebuild-under-way")
            assert f"a rebuild is {doing}" in body["detail"]
            assert not rebuild.done()
            gate.release(stage)
        response = await asyncio.wait_for(rebuild, 120)
        assert response.status_code == 200, response.text
        result = response.json()
        head = (await state(client))["frame"]["known_position"]
        assert result == {
            "rows": await owner.fetchval("SELECT count(*) FROM segments"),
            "position": head,
            "policy": SERVED.name,
            "policy_version": SERVED.version,
        }
        items = {i["place"]["id"]: i["segment"] for i in (await state(client))["items"]}
        assert items["sy-raqqa"]["confidence"] != 99
        assert items["sy-raqqa"]["controller"] == "sdf"
        assert items["sy-deir"]["controller"] == "sdf"
        rebuilt = await rows(owner)
        assert (await client.post("/v1/admin/rebuild")).status_code == 200
        assert await rows(owner) == rebuilt


async def test_rows_of_another_policy_are_rebuilt_at_start_while_serving(
    settings: Settings, admin_key: str, owner: asyncpg.Connection
) -> None:
    """The switch-over: a database whose projection holds rows of another policy (as
    after a new policy ships) is rebuilt under the served policy when the service starts,
    in the background. Meanwhile every answer names the old policy and the position its
    rows reached, /ready is 503 saying a rebuild is under way, POSTs answer 201 but write
    no row among the old ones (the rebuild catches up with them), and a rebuild by hand is
    a 409. Once swapped, answers name the served policy at the head, the POSTs made
    meanwhile are in the rows, and the rows are those of a rebuild done alone."""
    async with serving(settings, admin_key, None) as served:
        client = served.client
        for e in _some_events():
            await post(client, e)
    position = await owner.fetchval("SELECT position FROM projection_state")
    await owner.execute("UPDATE projection_state SET policy = $1", STALE)
    old = await rows(owner)

    gate = Gate("folding")
    async with serving(settings, admin_key, gate) as served:
        client = served.client
        await gate.at("folding")
        page = await state(client)
        assert (page["frame"]["policy"], page["frame"]["known_position"]) == (STALE, position)
        timeline = (await quick(client.get("/v1/places/sy-maskanah/timeline"))).json()
        assert timeline["frame"]["policy"] == STALE
        history = (await quick(client.get("/v1/places/sy-maskanah/history"))).json()
        assert history["policy"] == STALE
        ready = assert_problem(await quick(client.get("/ready")), 503)
        assert f"rows of {STALE}" in ready["detail"]
        assert f"serves {SERVED.name}" in ready["detail"]
        assert "a rebuild is folding" in ready["detail"]
        (receipt,) = await post(client, sdf_takes("sy-deir"))
        assert await rows(owner) == old
        assert (await state(client))["frame"]["known_position"] == position
        assert_problem(await quick(client.post("/v1/admin/rebuild")), 409)
        gate.release("folding")

        await served.rebuild_done()
        assert (await client.get("/ready")).status_code == 200
        page = await state(client)
        assert page["frame"]["policy"] == SERVED.name
        assert page["frame"]["known_position"] == receipt["position"]
        assert "sy-deir" in [i["place"]["id"] for i in page["items"]]
        rebuilt = await rows(owner)
        assert (await client.post("/v1/admin/rebuild")).status_code == 200
        assert await rows(owner) == rebuilt


async def test_rows_of_a_policy_not_known_to_be_older_are_not_rebuilt_at_start(
    settings: Settings, admin_key: str, owner: asyncpg.Connection
) -> None:
    """Regression test (a process that found another policy's rows rebuilt them to its
    own: during a rolling deploy, an old instance restarting rebuilt the new policy's rows
    back to the old one): rows of a policy this code does not know to be older (here a
    later version of the served one) are left as they are at start-up, with a log line;
    /ready is 503 naming that policy and saying to rebuild by hand; answers name it; POST
    /v1/admin/rebuild still rebuilds them to the served policy."""
    async with serving(settings, admin_key, None) as served:
        for e in _some_events():
            await post(served.client, e)
    await owner.execute("UPDATE projection_state SET policy_version = $1", SERVED.version + 1)
    old = await rows(owner)
    with capture_logs() as logs:
        async with serving(settings, admin_key, None) as served:
            client = served.client
            assert served.projector.rebuilding is None
            await asyncio.sleep(0.5)
            assert await rows(owner) == old
            ready = assert_problem(await quick(client.get("/ready")), 503)
            assert f"version {SERVED.version + 1}" in ready["detail"]
            assert "does not know" in ready["detail"]
            assert "frontline rebuild" in ready["detail"]
            assert (await state(client))["frame"]["policy_version"] == SERVED.version + 1
            response = await client.post("/v1/admin/rebuild")
            assert response.status_code == 200, response.text
            assert (await quick(client.get("/ready"))).status_code == 200
    events = [entry["event"] for entry in logs]
    assert "projections_policy_unknown_not_rebuilt" in events
    assert "projections_stale_rebuilding" not in events


async def test_a_service_told_not_to_rebuild_serves_stale_rows_honestly(
    settings: Settings, admin_key: str, owner: asyncpg.Connection
) -> None:
    """With FRONTLINE_REBUILD_STALE off, stale rows stay until a rebuild by hand: answers
    name their policy, /ready says to rebuild, and POST /v1/admin/rebuild brings them to
    the served policy."""
    async with serving(settings, admin_key, None) as served:
        client = served.client
        await post(client, event_json())
    await owner.execute("UPDATE projection_state SET policy = $1", STALE)
    async with serving(settings.with_(rebuild_stale=False), admin_key, None) as served:
        client = served.client
        assert (await state(client))["frame"]["policy"] == STALE
        ready = assert_problem(await client.get("/ready"), 503)
        assert "frontline rebuild" in ready["detail"]
        response = await client.post("/v1/admin/rebuild")
        assert response.status_code == 200, response.text
        assert response.json()["policy"] == SERVED.name
        assert (await state(client))["frame"]["policy"] == SERVED.name
        assert (await client.get("/ready")).status_code == 200


async def test_ready_says_when_another_process_rebuilds(
    settings: Settings, admin_key: str, owner: asyncpg.Connection
) -> None:
    """A rebuild run by another process (here another projector, as `frontline rebuild`
    would) on stale rows: /ready says that process is rebuilding them, and this service's
    own POST /v1/admin/rebuild is a 409 (the lock is the database's, not the process's)."""
    async with serving(settings, admin_key, None) as served:
        await post(served.client, event_json())
    await owner.execute("UPDATE projection_state SET policy = $1", STALE)
    gate = Gate("folding")
    other = TimelineProjector(rebuild_workers=1, on_rebuild=gate)
    task = other.start_rebuild(Connector.of(settings))
    try:
        await gate.at("folding")
        async with serving(settings.with_(rebuild_stale=False), admin_key, None) as served:
            ready = assert_problem(await quick(served.client.get("/ready")), 503)
            assert "another process is rebuilding them" in ready["detail"]
            refused = assert_problem(await quick(served.client.post("/v1/admin/rebuild")), 409)
            assert "another process" in refused["detail"]
            gate.release("folding")
            await asyncio.wait_for(task, 120)
            assert (await quick(served.client.get("/ready"))).status_code == 200
    finally:
        gate.release_all()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize(
    ("reading", "path"),
    [("state_rows", "/v1/state?valid_at=2017-06-05"), ("timeline", "/v1/places/sy-raqqa/timeline")],
)
async def test_an_answer_read_across_a_swap_names_the_policy_of_its_rows(
    settings: Settings,
    admin_key: str,
    owner: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    reading: str,
    path: str,
) -> None:
    """Regression test (the policy was read by one statement and the rows by a later one:
    a swap between the two gave the new rows under the old policy's name): a rebuild to
    the served policy swapped in between the read of the projection's state and the read
    of the rows, on rows of another policy, gives an answer naming the served policy (the
    rows it holds), not the old one."""
    async with serving(settings, admin_key, None) as served:
        for e in _some_events():
            await post(served.client, e)
    await owner.execute("UPDATE projection_state SET policy = $1", STALE)
    original = getattr(FrontReader, reading)
    swapped: list[bool] = []

    async def swap_first(self: FrontReader, *args: Any) -> Any:
        if not swapped:  # the first read of rows only: a rebuild swaps just before it
            swapped.append(True)
            await TimelineProjector(rebuild_workers=1).rebuild(Connector.of(settings))
        return await original(self, *args)

    monkeypatch.setattr(FrontReader, reading, swap_first)
    async with serving(settings.with_(rebuild_stale=False), admin_key, None) as served:
        response = await served.client.get(path)
        assert response.status_code == 200, response.text
        assert swapped
        assert response.json()["frame"]["policy"] == SERVED.name


async def test_a_stop_cancels_a_rebuild_in_flight_and_its_request_answers_503(
    settings: Settings, admin_key: str, owner: asyncpg.Connection
) -> None:
    """Regression test (uvicorn waited for every request in flight before the lifespan
    cancelled the rebuild, so a SIGTERM waited for a whole admin rebuild and ``docker
    stop`` ended in SIGKILL): the server as ``frontline serve`` runs it (``Server`` with
    the projector's ``cancel_rebuild`` as ``on_stop``), told to stop (as SIGTERM does)
    while POST /v1/admin/rebuild is held mid-fold, stops within seconds; the request
    answers 503 ``rebuild-interrupted`` with Retry-After; the served rows are untouched,
    the twin empty and no rebuild lock is left."""
    async with serving(settings, admin_key, None) as served:
        for e in _some_events():
            await post(served.client, e)
    before = await rows(owner)
    gate = Gate("folding")  # never released: only the stop ends the rebuild
    projector = TimelineProjector(rebuild_workers=1, on_rebuild=gate)
    app = create_app(settings, projector=projector)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False),
        on_stop=projector.cancel_rebuild,
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"authorization": f"Bearer {admin_key}"},
            timeout=60,
        ) as client:
            rebuild = asyncio.ensure_future(client.post("/v1/admin/rebuild"))
            await gate.at("folding")
            server.should_exit = True  # what uvicorn's SIGTERM handler does
            await asyncio.wait_for(asyncio.shield(task), 15)
            response = await asyncio.wait_for(rebuild, 5)
    finally:
        gate.release_all()
        server.should_exit = True
        await task
    body = assert_problem(response, 503)
    assert body["type"].endswith("/rebuild-interrupted")
    assert "stopping" in body["detail"]
    assert response.headers["retry-after"] == "30"
    assert await rows(owner) == before
    assert await owner.fetchval("SELECT count(*) FROM segments_next") == 0
    assert not await owner.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1718775662"
    )
