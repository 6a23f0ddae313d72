"""The composition root: ``create_app(settings)`` wires every part, with production defaults.

Tests call the same function with other settings (or an existing pool). Nothing connects at
import time: the pool is made in the app's lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import asyncpg
import structlog
from litestar import Litestar
from litestar.di import Provide

from service.api.access import access_control
from service.api.areas import AreasController
from service.api.audit import AuditController
from service.api.deps import Services
from service.api.events import EventsController
from service.api.export import ExportController
from service.api.front import FrontController
from service.api.health import health, metrics_route, ready
from service.api.imports import ImportsController
from service.api.map import map_assets, map_page
from service.api.middleware import request_logging
from service.api.openapi import add_access, add_contract_schemas, openapi_config, refine
from service.api.problems import EXCEPTION_HANDLERS
from service.errors import RebuildUnderWay
from service.metrics import Metrics
from service.projections.reads import FrontReader
from service.projections.timelines import TimelineProjector, projection_state, stale_because
from service.settings import Settings, load_signing_key
from service.store.appender import GroupCommitter
from service.store.audit import AuditReader
from service.store.db import Connector, create_pool
from service.store.events import UNAVAILABLE, EventStore
from service.store.keys import KeyStore
from service.store.live import LiveHub

log = structlog.get_logger(__name__)


def _version() -> str:
    try:
        return version("frontline")
    except PackageNotFoundError:
        return "0+unknown"


async def _rebuild_if_stale(
    projector: TimelineProjector, pool: asyncpg.Pool, settings: Settings
) -> None:
    """Start a background rebuild when the stored rows are stale: behind the log, or of a
    policy this code knows to be older. Rows of a policy it does not know (a later version
    of the service may have made them, during a rolling deploy) are left alone: rebuilding
    them would undo that version's rebuild. /ready says so (a failed check is logged too),
    and the operator rebuilds by hand."""
    try:
        why = await stale_because(pool, projector.policy)
        if why is None:
            return
        if not (await projection_state(pool)).rebuilt_by_itself(projector.policy):
            log.warning("projections_policy_unknown_not_rebuilt", reason=why)
            return
        log.warning("projections_stale_rebuilding", reason=why)
        _ = projector.start_rebuild(Connector.of(settings))  # it logs how it ends
    except (RebuildUnderWay, asyncpg.PostgresError, *UNAVAILABLE) as error:
        log.error("projections_stale_not_rebuilt", error=f"{type(error).__name__}: {error}")


def create_app(
    settings: Settings,
    *,
    pool: asyncpg.Pool | None = None,
    projector: TimelineProjector | None = None,
) -> Litestar:
    """Build the HTTP app. ``settings.database_url`` must be resolved (see ``resolve_urls``).

    At start-up, when the stored projections are stale (rows of another policy than the
    one served, or behind the log) and ``settings.rebuild_stale``, a rebuild starts in the
    background: the app serves meanwhile, its answers naming the policy and position of the
    rows they read, and the rebuilt rows are swapped in when they have caught up.
    """
    holder: dict[str, Services] = {}
    metrics = Metrics()
    signing = load_signing_key(settings)  # fails fast, before serving, on a bad key file

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        own_pool = pool is None
        active = pool if pool is not None else await create_pool(settings)
        projecting = projector or TimelineProjector(
            cache_events=settings.fold_cache,
            rebuild_workers=settings.rebuild_workers,
            rebuild_spare=settings.pool_max,
        )
        store = EventStore(active, projecting if settings.projections else None)
        store.commit_observers.append(metrics.observe_commit)
        committer = GroupCommitter(store, settings.group_max)
        committer.start()
        live = LiveHub(
            store,
            poll=settings.stream_poll,
            per_key=settings.streams_per_key,
            anonymous=settings.anonymous_streams,
        )
        holder["services"] = Services(
            settings=settings,
            store=store,
            committer=committer,
            projector=projecting,
            connector=Connector.of(settings),
            front=FrontReader(active),
            audit=AuditReader(active, signing, sample_events=settings.verify_sample),
            metrics=metrics,
            keys=KeyStore(active, settings.key_cache),
            live=live,
        )
        app.state.services = holder["services"]  # for the access guard
        log.info("sys_startup", version=_version(), pool_max=settings.pool_max)
        if settings.projections and settings.rebuild_stale:
            await _rebuild_if_stale(projecting, active, settings)
        try:
            yield
        finally:
            await projecting.cancel_rebuild()
            await live.close()
            await committer.stop()
            if own_pool:
                await active.close()
            log.info("sys_shutdown")

    def services() -> Services:
        return holder["services"]

    app = Litestar(
        route_handlers=[
            EventsController,
            FrontController,
            AreasController,
            AuditController,
            ExportController,
            ImportsController,
            health,
            ready,
            metrics_route,
            map_page,
            map_assets(),
        ],
        dependencies={"services": Provide(services, sync_to_thread=False)},
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(_version()),
        # Bodies are read by the handlers: JSON ones against max_body_bytes (413), NDJSON
        # imports streamed without a limit.
        request_max_body_size=None,
        logging_config=None,
        debug=False,
    )
    add_contract_schemas(app)
    add_access(app)
    refine(app, settings.max_page)
    # Litestar's `middleware=` runs only for matched routes; wrapping the app's ASGI handler
    # gives every request (404s and 405s included) its request id and its log line.
    # Keys are checked before routing (service/api/access.py), inside the logging wrapper so
    # a refused request has its request id and its log line.
    app.asgi_handler = request_logging(access_control(app.asgi_handler, services), metrics)
    return app
