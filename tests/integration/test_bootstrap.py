"""The composition root: ``service.bootstrap`` builds the services once, over a real database."""

from __future__ import annotations

import asyncpg

from service import bootstrap
from service.projections.timelines import TimelineProjector
from service.settings import Settings
from tests.integration.helpers import request
from tests.payloads import event_json


async def test_services_leave_a_given_pool_open(settings: Settings, pool: asyncpg.Pool) -> None:
    """Services built over a pool the caller gives read and write through it, and leave it
    open on the way out: the caller owns it."""
    async with bootstrap.services(settings, pool=pool) as built:
        assert built.store.pool is pool
        assert built.audit.pool is pool
        assert built.keys.pool is pool
        (receipt,) = await built.committer.append(request(event_json()))
    assert receipt.position == 1
    assert not pool.is_closing()
    assert await pool.fetchval("SELECT position FROM projection_state") == 1


async def test_services_close_the_pool_they_open(settings: Settings) -> None:
    """Without a pool given, the services open one on the settings and close it on the way
    out, once the group committer has written what was queued."""
    async with bootstrap.services(settings.with_(pool_min=1, pool_max=3)) as built:
        own = built.store.pool
        assert own.get_max_size() == 3
        (receipt,) = await built.committer.append(request(event_json()))
        assert receipt.position == 1
        assert built.pool_use().max == 3
    assert own.is_closing()


async def test_one_projector_shared_by_the_store_and_the_use_cases(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    """A projector given (as tests and ``frontline serve`` give one) is the one the store
    projects with and the rebuilds use; with projections off the store projects nothing."""
    given = TimelineProjector(rebuild_workers=1)
    async with bootstrap.services(settings, pool=pool, projector=given) as built:
        assert built.projector is given
        assert built.store.projector is given
        assert (await built.rebuilds.staleness()).reason is None
        assert (await built.readiness.check()).not_ready is None
    async with bootstrap.services(settings.with_(projections=False), pool=pool) as off:
        assert off.store.projector is None
        (receipt,) = await off.committer.append(request(event_json()))
    assert receipt.position == 1
    async with bootstrap.services(settings, pool=pool) as on:
        stale = await on.rebuilds.staleness()
        assert stale.reason == "the projections stop at position 0 and the log at 1"
        assert stale.rebuilt_at_start
        readiness = await on.readiness.check()
        assert readiness.not_ready is not None
        assert "frontline rebuild" in readiness.not_ready


def test_the_projector_is_sized_by_the_settings(settings: Settings) -> None:
    """``build_projector`` gives the projector its fold cache, its rebuild's workers and the
    connections its rebuild leaves to the service's pool from the settings."""
    projector = bootstrap.build_projector(
        settings.with_(fold_cache=1234, rebuild_workers=3, pool_max=7)
    )
    assert (projector.cache_events, projector.rebuild_workers, projector.rebuild_spare) == (
        1234,
        3,
        7,
    )
