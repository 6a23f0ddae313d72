"""What handlers are given and share: the services (built by ``service.bootstrap``, asked
for as ``services: ServicesDep``), the request body read under a limit, and who sent a
request (the key's name, whether it is an admin's)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from service.api.errors import BodyTooLarge
from service.bootstrap import Services as Services  # handlers' type, built by the bootstrap

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
