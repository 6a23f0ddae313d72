"""Wire once: the service's parts built from settings, for the app and every CLI command.

``services(settings)`` is the one place that opens the service's pool and builds the store,
the projector, the group committer, the readers and the use cases on it, and closes them in
the right order; ``build_projector`` is the one place a projector is made, and
``owner_keys`` the one place the schema owner's pool is opened (for ``frontline keys``).
Production passes settings alone; tests pass an existing pool or a projector of their own.
Nothing connects at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import asyncpg

from service.domain.audit import SigningKey
from service.metrics import Metrics, PoolUse
from service.projections.reads import FrontReader
from service.projections.timelines import TimelineProjector
from service.settings import Settings
from service.store.appender import GroupCommitter
from service.store.audit import AuditReader
from service.store.casualties import CasualtyReader
from service.store.db import Connector, create_owner_pool, create_pool, local_settings
from service.store.events import EventStore
from service.store.keys import KeyStore
from service.store.listen import CommitListener
from service.store.live import LiveHub
from service.store.replicas import ReadRouter
from service.usecases.readiness import ReadinessCheck
from service.usecases.rebuild import Rebuilds


@dataclass(frozen=True, slots=True)
class Services:
    """The service's parts, built once by :func:`services` (the app's lifespan, a command)."""

    settings: Settings
    store: EventStore
    committer: GroupCommitter
    projector: TimelineProjector
    """The one projector of this process (the store uses it when projections are on)."""
    front: FrontReader
    casualties: CasualtyReader
    """The casualty figures' reads (``GET /v1/places/{id}/casualties``, ``/v1/casualties``)."""
    audit: AuditReader
    metrics: Metrics
    keys: KeyStore
    live: LiveHub
    """The one reader of new events, fanned out to every live stream (and their count)."""
    rebuilds: Rebuilds
    """Rebuild and catch-up of the projections (start-up, ``frontline rebuild``, the API)."""
    readiness: ReadinessCheck
    """What ``/ready`` checks."""
    pool_use: Callable[[], PoolUse]
    """The service pool's connections at this moment (``GET /metrics``)."""
    reads: ReadRouter
    """Which database answers each read: a replica of ``FRONTLINE_READ_URLS`` that has
    applied what the read needs, else the primary; and the replicas' lags."""
    log: EventStore
    """The log's reads for the API's GET routes (pages, one event, the registries), over
    :attr:`reads`' routed pool; appends go through :attr:`store`, on the primary only."""


def build_projector(settings: Settings) -> TimelineProjector:
    """The projector of this process, as the settings size its cache and its rebuilds."""
    return TimelineProjector(
        cache_events=settings.fold_cache,
        rebuild_workers=settings.rebuild_workers,
        rebuild_spare=settings.pool_max,
    )


@asynccontextmanager
async def services(
    settings: Settings,
    *,
    pool: asyncpg.Pool | None = None,
    projector: TimelineProjector | None = None,
    metrics: Metrics | None = None,
    signing: SigningKey | None = None,
) -> AsyncIterator[Services]:
    """The service's parts over ``pool`` (else a pool of its own, closed on the way out).

    ``settings.database_url`` must be resolved (see ``resolve_urls``). ``signing`` is the
    head-signing key (``load_signing_key``): the app and ``frontline verify`` pass it; the
    commands that sign no head leave it out, so that a key file they never use cannot stop
    them. On the way out: a rebuild of this process is cancelled (the served rows stay as
    they were), the live reader stops, the group committer writes what is queued.
    """
    own_pool = pool is None
    active = pool if pool is not None else await create_pool(settings)
    try:
        reads = ReadRouter(
            active,
            [
                partial(create_pool, settings.with_(database_url=u))
                for u in settings.read_url_list()
            ],
            wait=settings.read_wait,
            max_lag=settings.read_max_lag,
            check=settings.read_check,
        )
        projecting = projector or build_projector(settings)
        counting = metrics or Metrics()
        store = EventStore(
            active,
            projecting if settings.projections else None,
            local_settings=local_settings(settings),
        )
        store.commit_observers.append(counting.observe_commit)
        committer = GroupCommitter(store, settings.group_max)
        live = LiveHub(
            store,
            poll=settings.stream_poll,
            per_key=settings.streams_per_key,
            anonymous=settings.anonymous_streams,
            listener=CommitListener(Connector.of(settings), store.committed.notify),
        )
        built = Services(
            settings=settings,
            store=store,
            committer=committer,
            projector=projecting,
            front=FrontReader(reads.pool),
            casualties=CasualtyReader(reads.pool),
            audit=AuditReader(active, signing, sample_events=settings.verify_sample),
            metrics=counting,
            keys=KeyStore(active, settings.key_cache),
            live=live,
            rebuilds=Rebuilds(active, projecting, Connector.of(settings)),
            readiness=ReadinessCheck(store, active, projecting, projections=settings.projections),
            pool_use=lambda: PoolUse(
                size=active.get_size(), idle=active.get_idle_size(), max=active.get_max_size()
            ),
            reads=reads,
            log=EventStore(reads.pool),
        )
        counting.pool = built.pool_use
        counting.replicas = lambda: [
            (r.name, r.applied, r.lag_positions, r.lag_seconds, r.in_rotation)
            for r in reads.status()
        ]
        await reads.start()
        committer.start()
        try:
            yield built
        finally:
            await projecting.cancel_rebuild()
            await live.close()
            await committer.stop()
            await reads.close()  # and the replicas' pools
    finally:
        if own_pool:
            await active.close()


@asynccontextmanager
async def owner_keys(settings: Settings) -> AsyncIterator[KeyStore]:
    """The API keys through a small pool as the schema's owner: keys are the owner's to
    make and revoke (the service role may only read them)."""
    pool = await create_owner_pool(settings)
    try:
        yield KeyStore(pool)
    finally:
        await pool.close()
