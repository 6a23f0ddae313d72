"""Readiness: whether this process can serve what it should, as ``GET /ready`` reports it.

Ready means: the database answers (within ``READY_TIMEOUT``), its schema is at the revision
this code expects, and (with projections on) the projections are those of the served policy,
up to the log's head. While a rebuild brings stale projections back, the service answers
every route (from the old rows, naming their policy and position) but is not ready.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

import asyncpg

from service.projections.timelines import TimelineProjector, projection_state, rebuild_running
from service.store.events import UNAVAILABLE, EventStore
from service.store.migrate import head_revision

READY_TIMEOUT: Final = 5.0
"""Seconds the check may take; a database that has not answered by then is not ready."""


@dataclass(frozen=True, slots=True)
class Readiness:
    """The outcome of one check."""

    revision: str | None
    """The database schema's revision (None when it could not be read)."""
    not_ready: str | None = None
    """Why the service is not ready, and what brings it back; None when it is ready."""


class ReadinessCheck:
    """Checks the database, the schema and the projections of this process."""

    def __init__(
        self,
        store: EventStore,
        pool: asyncpg.Pool,
        projector: TimelineProjector,
        *,
        projections: bool,
        timeout: float = READY_TIMEOUT,
    ) -> None:
        self._store = store
        self._pool = pool
        self._projector = projector
        self._projections = projections
        self._timeout = timeout

    async def check(self) -> Readiness:
        """Ready or why not, within the timeout. A database error that says nothing about
        readiness (anything but unreachable or unmigrated) is raised."""
        check = asyncio.ensure_future(self._check())
        # Not asyncio.wait_for: on its timeout it cancels the check and then *waits for it to
        # finish*, and a check stuck on a connection that no longer answers (a blackholed
        # network) finishes only when asyncpg's cancellation, and the pool's release after it,
        # give up. Here the answer goes out at the timeout; the check is cancelled and left
        # to wind down on its own.
        done, _ = await asyncio.wait({check}, timeout=self._timeout)
        if not done:
            check.cancel()
            check.add_done_callback(_quietly)
            return Readiness(
                revision=None,
                not_ready=f"the database did not answer within {self._timeout:g} s",
            )
        return check.result()

    async def _check(self) -> Readiness:
        expected = head_revision()
        try:
            revision = await self._store.schema_revision()
            if revision != expected:
                return Readiness(
                    revision=revision,
                    not_ready=f"the database schema is at {revision or 'nothing'}, this code "
                    f"expects {expected}: run `frontline migrate`",
                )
            if self._projections:
                why = await self._projections_stale()
                if why is not None:
                    return Readiness(revision=revision, not_ready=why)
        except UNAVAILABLE as error:  # TimeoutError too: it is an OSError
            return Readiness(
                revision=None,
                not_ready=f"the database is unreachable: {type(error).__name__}",
            )
        except asyncpg.UndefinedTableError:
            return Readiness(
                revision=None,
                not_ready=f"the database schema is at nothing, this code expects {expected}: "
                "run `frontline migrate`",
            )
        return Readiness(revision=revision)

    async def _projections_stale(self) -> str | None:
        """Why the projections are not the served policy's up to the head, and the remedy."""
        # The head first, then the projections: they move together, in one transaction, so
        # when they are in step the later read is never behind the earlier one, and a commit
        # landing between the two reads is not a lag.
        head, _ = await self._store.head()
        state = await projection_state(self._pool)
        served = self._projector.policy
        why = None
        if not state.follows(served):
            why = state.other_policy(served)
        elif state.position < head:
            why = f"the projections stop at position {state.position} and the log at {head}"
        if why is None:
            return None
        rebuilding = self._projector.rebuilding
        if rebuilding is not None:
            remedy = rebuilding.describe()
        elif await rebuild_running(self._pool):
            remedy = "another process is rebuilding them"
        else:
            remedy = "run `frontline rebuild` (or POST /v1/admin/rebuild)"
        return f"{why}: {remedy}"


def _quietly(task: asyncio.Future[Readiness]) -> None:
    """Collect an abandoned check's outcome, so that asyncio does not log it as lost."""
    if not task.cancelled():
        task.exception()
