"""The HTTP composition: ``create_app(settings)`` puts the routes, the error map, the access
check, request logging and the OpenAPI document around the services that
:mod:`service.bootstrap` builds (in the app's lifespan), with production defaults.

Tests call the same function with other settings (or an existing pool, or a projector of
their own). Nothing connects at import time: the pool is made in the app's lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from importlib.metadata import PackageNotFoundError, version

import asyncpg
import structlog
from litestar import Litestar
from litestar.di import Provide

from service import bootstrap
from service.api.access import access_control
from service.api.areas import AreasController
from service.api.audit import AuditController
from service.api.caching import conditional_get
from service.api.casualties import CasualtiesController
from service.api.cors import cors, cors_config
from service.api.deps import Services
from service.api.events import EventsController
from service.api.examples import add_examples
from service.api.export import ExportController
from service.api.front import FrontController
from service.api.head import head_as_get
from service.api.health import health, metrics_route, ready
from service.api.imports import ImportsController
from service.api.map import docs_assets, map_assets, map_page
from service.api.middleware import request_logging
from service.api.openapi import (
    add_access,
    add_contract_schemas,
    add_problem_catalogue,
    openapi_config,
    refine,
)
from service.api.places import PlaceMergesController
from service.api.problems import EXCEPTION_HANDLERS
from service.api.replicas import document as document_reads
from service.api.replicas import read_routing
from service.api.routing import refuse_unknown_parameters, route_refusal
from service.api.sides import SidesController, SourcesController
from service.metrics import Metrics
from service.projections.timelines import TimelineProjector
from service.settings import Settings, load_signing_key

log = structlog.get_logger(__name__)


def _version() -> str:
    try:
        return version("frontline")
    except PackageNotFoundError:
        return "0+unknown"


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
        async with bootstrap.services(
            settings, pool=pool, projector=projector, metrics=metrics, signing=signing
        ) as built:
            holder["services"] = built
            app.state.services = built  # for the access guard
            log.info("sys_startup", version=_version(), pool_max=settings.pool_max)
            if settings.projections and settings.rebuild_stale:
                await built.rebuilds.catch_up_at_start()
            yield
        metrics.close()
        log.info("sys_shutdown")

    def services() -> Services:
        return holder["services"]

    app = Litestar(
        route_handlers=[
            EventsController,
            FrontController,
            CasualtiesController,
            AreasController,
            AuditController,
            ExportController,
            ImportsController,
            SidesController,
            PlaceMergesController,
            SourcesController,
            health,
            ready,
            metrics_route,
            map_page,
            map_assets(),
            docs_assets(),
        ],
        dependencies={"services": Provide(services, sync_to_thread=False)},
        # Which database answers each read, outermost (service/api/replicas.py); then
        # ETags, 304, the cache policy and gzip of every read answer (service/api/caching.py).
        middleware=[
            partial(read_routing, services=services),
            partial(conditional_get, services=services),
        ],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=refuse_unknown_parameters(),
        openapi_config=openapi_config(_version()),
        # Bodies are read by the handlers: JSON ones against max_body_bytes (413), NDJSON
        # imports streamed without a limit.
        request_max_body_size=None,
        logging_config=None,
        debug=False,
    )
    add_contract_schemas(app)
    add_problem_catalogue(app)
    add_access(app)
    refine(app, settings.max_page)
    add_examples(app)
    document_reads(app)
    # Litestar's `middleware=` runs only for matched routes; wrapping the app's ASGI handler
    # gives every request (404s and 405s included) its request id and its log line.
    # Keys are checked before routing (service/api/access.py), inside the logging wrapper so
    # a refused request has its request id and its log line.
    # CORS outside the key check: a browser's preflight carries no key (service/api/cors.py).
    # A HEAD runs as its GET from CORS inwards, its body dropped (service/api/head.py).
    app.asgi_handler = request_logging(
        head_as_get(
            cors(
                access_control(app.asgi_handler, services, route_refusal(app)),
                cors_config(settings.cors_origin_list()),
            )
        ),
        metrics,
    )
    return app
