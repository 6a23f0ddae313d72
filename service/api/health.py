"""/health (the process is up) and /ready (the database answers, schema at head)."""

from __future__ import annotations

import asyncio
from typing import Final

import asyncpg
from litestar import get
from litestar.openapi.datastructures import ResponseSpec

from contracts.responses import Health, Problem
from service.api.deps import Services, ServicesDep
from service.errors import NotReady
from service.metrics import PoolUse
from service.projections.timelines import projection_state
from service.store.events import UNAVAILABLE
from service.store.migrate import head_revision
from service.store.queries import SQL

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
    """The database answers, its schema is at the revision this code expects, and (with
    projections on) the projections are those of the served policy, up to the log's head.
    While a rebuild brings stale projections back, the service answers every route (from
    the old rows, naming their policy and position) but is not ready."""
    check = asyncio.ensure_future(_readiness(services))
    # Not asyncio.wait_for: on its timeout it cancels the check and then *waits for it to
    # finish*, and a check stuck on a connection that no longer answers (a blackholed
    # network) finishes only when asyncpg's cancellation, and the pool's release after it,
    # give up. Here the answer goes out at READY_TIMEOUT; the check is cancelled and left
    # to wind down on its own.
    done, _ = await asyncio.wait({check}, timeout=READY_TIMEOUT)
    if not done:
        check.cancel()
        check.add_done_callback(_quietly)
        raise NotReady(f"the database did not answer within {READY_TIMEOUT:g} s")
    return check.result()


def _quietly(task: asyncio.Future[Health]) -> None:
    """Collect an abandoned check's outcome, so that asyncio does not log it as lost."""
    if not task.cancelled():
        task.exception()


async def _readiness(services: Services) -> Health:
    expected = head_revision()
    try:
        revision = await services.store.schema_revision()
        if revision != expected:
            raise NotReady(
                f"the database schema is at {revision or 'nothing'}, this code expects "
                f"{expected}: run `frontline migrate`"
            )
        if services.settings.projections:
            # The head first, then the projections: they move together, in one transaction,
            # so when they are in step the later read is never behind the earlier one, and
            # a commit landing between the two reads is not a lag.
            head, _ = await services.store.head()
            state = await projection_state(services.store.pool)
            served = services.projector.policy
            why = None
            if not state.follows(served):
                why = state.other_policy(served)
            elif state.position < head:
                why = f"the projections stop at position {state.position} and the log at {head}"
            if why is not None:
                rebuilding = services.projector.rebuilding
                if rebuilding is not None:
                    remedy = rebuilding.describe()
                elif await services.store.pool.fetchval(SQL["read_rebuild_running"]):
                    remedy = "another process is rebuilding them"
                else:
                    remedy = "run `frontline rebuild` (or POST /v1/admin/rebuild)"
                raise NotReady(f"{why}: {remedy}")
    except UNAVAILABLE as error:  # TimeoutError too: it is an OSError
        raise NotReady(f"the database is unreachable: {type(error).__name__}") from error
    except asyncpg.UndefinedTableError as error:
        raise NotReady(
            f"the database schema is at nothing, this code expects {expected}: "
            "run `frontline migrate`"
        ) from error
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
