"""Rebuild and catch-up: the stored projections brought back to the log under the served policy.

Stored rows are stale when they are another policy's, or stop short of the log's head (a log
appended to with projections off). Three callers: the service's start-up, which rebuilds
them in the background while it serves when it knows their policy (``catch_up_at_start``);
``frontline migrate``, which says whether they are stale and what will happen
(``staleness``); and ``frontline rebuild`` and ``POST /v1/admin/rebuild``, which rebuild and
answer once the new rows are swapped in (``rebuild``). How a rebuild works:
:mod:`service.projections.rebuild`.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import structlog

from service.errors import RebuildUnderWay
from service.projections.rebuild import RebuildReport
from service.projections.timelines import TimelineProjector, projection_state, stale_because
from service.store.db import Connector
from service.store.events import UNAVAILABLE

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Staleness:
    """Whether the stored projections are the served policy's, up to the log's head."""

    reason: str | None
    """Why they are stale; None when they are not."""
    rebuilt_at_start: bool
    """Whether ``frontline serve`` rebuilds them by itself at start-up: rows of its own policy
    (behind the log) or of a policy it knows to be older. Rows of a policy it does not know
    may be a later version's (a rolling deploy): they are left to ``frontline rebuild``."""


class Rebuilds:
    """Rebuilds of this process's projector, over the service's pool and connector."""

    def __init__(
        self, pool: asyncpg.Pool, projector: TimelineProjector, connector: Connector
    ) -> None:
        self._pool = pool
        self._projector = projector
        self._connector = connector
        """How a rebuild opens its own connection and its workers' (they cannot share a pool)."""

    async def staleness(self) -> Staleness:
        """Whether the stored rows are stale, and whether the service rebuilds them by itself.

        An empty log with rows of another policy is adopted on the spot (nothing to rebuild).
        """
        policy = self._projector.policy
        why = await stale_because(self._pool, policy)
        if why is None:
            return Staleness(reason=None, rebuilt_at_start=False)
        state = await projection_state(self._pool)
        return Staleness(reason=why, rebuilt_at_start=state.rebuilt_by_itself(policy))

    async def catch_up_at_start(self) -> None:
        """Start a background rebuild when the stored rows are stale: behind the log, or of a
        policy this code knows to be older. Rows of a policy it does not know (a later version
        of the service may have made them, during a rolling deploy) are left alone: rebuilding
        them would undo that version's rebuild. /ready says so (a failed check is logged too),
        and the operator rebuilds by hand."""
        try:
            stale = await self.staleness()
            if stale.reason is None:
                return
            if not stale.rebuilt_at_start:
                log.warning("projections_policy_unknown_not_rebuilt", reason=stale.reason)
                return
            log.warning("projections_stale_rebuilding", reason=stale.reason)
            _ = self._projector.start_rebuild(self._connector)  # it logs how it ends
        except (RebuildUnderWay, asyncpg.PostgresError, *UNAVAILABLE) as error:
            log.error("projections_stale_not_rebuilt", error=f"{type(error).__name__}: {error}")

    async def rebuild(self) -> RebuildReport:
        """Rebuild every projection row from the log; the report, once the rows are swapped in.

        RebuildUnderWay when one runs already (here or in another process), RebuildFailed
        when it fails, RebuildInterrupted when a passing condition stops it: the served rows
        are untouched in every case.
        """
        return await self._projector.rebuild(self._connector)
