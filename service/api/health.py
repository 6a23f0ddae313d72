"""/health (the process is up) and /ready (the database answers, schema at head)."""

from __future__ import annotations

from litestar import get
from litestar.openapi.datastructures import ResponseSpec

from contracts.responses import Health, Problem, ReplicaHealth
from service.api.deps import ServicesDep
from service.errors import NotReady
from service.metrics import CONTENT_TYPE


@get("/health", operation_id="getHealth", summary="Liveness", tags=["operations"])
async def health() -> Health:
    """The process is up and serving."""
    return Health(status="ok")


@get(
    "/ready",
    operation_id="getReady",
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
    """The database answers, its schema is at the revision this code expects, and (with
    projections on) the projections are those of the served policy, up to the log's head.
    While a rebuild brings stale projections back, the service answers every route (from
    the old rows, naming their policy and position) but is not ready. With read replicas,
    each one's applied position and lag (a replica out of the rotation does not make the
    service unready: the primary answers its reads)."""
    readiness = await services.readiness.check()
    if readiness.not_ready is not None:
        raise NotReady(readiness.not_ready)
    replicas = [
        ReplicaHealth(
            name=r.name,
            applied_position=r.applied,
            lag_positions=r.lag_positions,
            lag_seconds=r.lag_seconds,
            in_rotation=r.in_rotation,
            error=r.error,
        )
        for r in services.reads.status()
    ]
    return Health(
        status="ready",
        database="ok",
        migration=readiness.revision,
        replicas=replicas or None,
    )


@get(
    "/metrics",
    operation_id="getMetrics",
    summary="Metrics (Prometheus text format)",
    description=(
        "Requests by route and status, latency histograms by route, events appended, events "
        "per commit, the database pool's connections, and (one process) the process's CPU, "
        "memory and garbage collector. Open to every client. Per process, or summed over the "
        "service's processes when PROMETHEUS_MULTIPROC_DIR is set."
    ),
    tags=["operations"],
    media_type=CONTENT_TYPE,
)
async def metrics_route(services: ServicesDep) -> bytes:
    """The exposition."""
    return services.metrics.render()
