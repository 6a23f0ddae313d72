"""/health (the process is up) and /ready (the database answers, schema at head)."""

from __future__ import annotations

import asyncio
from typing import Final

import asyncpg
from litestar import get
from litestar.openapi.datastructures import ResponseSpec

from contracts.responses import Health, Problem
from service.api.deps import ServicesDep
from service.domain.errors import NotReady
from service.metrics import PoolUse
from service.projections.timelines import projection_state
from service.store.events import UNAVAILABLE
from service.store.migrate import head_revision

READY_TIMEOUT: Final = 5.0


@get("/health", summary="Liveness", tags=["operations"])
async def health() -> Health:
    """The process is up and serving."""
    return Health(status="ok")


@get(
    "/ready",
    summary="Readiness",
    tags=["operations"],
    responses={
        503: ResponseSpec(
            Problem,
            description="The database is unreachable or its schema is not at head.",
            media_type="application/problem+json",
            generate_examples=False,
        )
    },
)
async def ready(services: ServicesDep) -> Health:
    """The database answers and its schema is at the revision this code expects."""
    expected = head_revision()
    try:
        revision = await asyncio.wait_for(services.store.schema_revision(), READY_TIMEOUT)
    except (*UNAVAILABLE, TimeoutError) as error:
        raise NotReady(f"the database is unreachable: {type(error).__name__}") from error
    except asyncpg.UndefinedTableError:
        revision = None
    if revision != expected:
        raise NotReady(
            f"the database schema is at {revision or 'nothing'}, this code expects {expected}: "
            "run `frontline migrate`"
        )
    if services.settings.projections:
        head, _ = await services.store.head()
        projected = (await projection_state(services.store.pool)).position
        if projected != head:
            raise NotReady(
                f"the projections stop at position {projected} and the log at {head}: "
                "run `frontline rebuild`"
            )
    return Health(status="ready", database="ok", migration=revision)


@get(
    "/metrics",
    summary="Metrics (Prometheus text format)",
    description=(
        "This process's counters: requests by route and status, latency histograms by route, "
        "events appended, events per commit, and the database pool's connections. Open to "
        "every client; counted per process."
    ),
    tags=["operations"],
    media_type="text/plain; version=0.0.4; charset=utf-8",
)
async def metrics_route(services: ServicesDep) -> str:
    """The exposition."""
    pool = services.store.pool
    use = PoolUse(size=pool.get_size(), idle=pool.get_idle_size(), max=pool.get_max_size())
    return services.metrics.render(use)
