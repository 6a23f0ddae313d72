"""What handlers are given: the store, the group committer, the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from service.api.errors import BodyTooLarge
from service.metrics import Metrics
from service.projections.reads import FrontReader
from service.projections.timelines import TimelineProjector
from service.settings import Settings
from service.store.appender import GroupCommitter
from service.store.audit import AuditReader
from service.store.db import Connector
from service.store.events import EventStore
from service.store.keys import KeyStore
from service.store.live import LiveHub


@dataclass(frozen=True, slots=True)
class Services:
    """The service's parts, built once in the app's lifespan."""

    settings: Settings
    store: EventStore
    committer: GroupCommitter
    projector: TimelineProjector
    """The one projector of this process (the store uses it when projections are on)."""
    connector: Connector
    """How to open a connection of the service's own (a rebuild and its workers use it)."""
    front: FrontReader
    audit: AuditReader
    metrics: Metrics
    keys: KeyStore
    live: LiveHub
    """The one reader of new events, fanned out to every live stream (and their count)."""


AnyRequest = Request[Any, Any, Any]
"""A request, whatever its user, auth and state types."""

ServicesDep = NamedDependency[Services]
"""How a handler asks for the services."""


async def read_limited(request: AnyRequest, limit: int) -> bytes:
    """The request body, refused with BodyTooLarge (413) past ``limit`` bytes, declared or
    streamed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def submitter_of(request: AnyRequest) -> str | None:
    """The name of the key that sent the request (recorded with each event it appends)."""
    principal = getattr(request.state, "principal", None)
    return None if principal is None else str(principal.name)


def sent_by_admin(request: AnyRequest) -> bool:
    """Whether an admin key sent the request (it may withdraw events other keys appended)."""
    principal = getattr(request.state, "principal", None)
    return principal is not None and principal.role == "admin"
