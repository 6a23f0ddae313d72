"""What handlers are given: the store, the group committer, the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from service.metrics import Metrics
from service.projections.reads import FrontReader
from service.projections.timelines import TimelineProjector
from service.settings import Settings
from service.store.appender import GroupCommitter
from service.store.audit import AuditReader
from service.store.events import EventStore
from service.store.keys import KeyStore


@dataclass(frozen=True, slots=True)
class Services:
    """The service's parts, built once in the app's lifespan."""

    settings: Settings
    store: EventStore
    committer: GroupCommitter
    projector: TimelineProjector
    """The one projector of this process (the store uses it when projections are on)."""
    front: FrontReader
    audit: AuditReader
    metrics: Metrics
    keys: KeyStore


AnyRequest = Request[Any, Any, Any]
"""A request, whatever its user, auth and state types."""

ServicesDep = NamedDependency[Services]
"""How a handler asks for the services."""
