"""Keys checked before routing: one ASGI wrapper, the access each request needs from its
method and path (``service.domain.access.route_access``, the README's table).

401 for a missing, unknown or revoked key, 403 for a known key whose role lacks the access;
both logged with OWASP names, never with the key. A key seen in the last
``FRONTLINE_KEY_CACHE`` seconds is checked without an await or a hash, so the check costs a
dict look-up on the hot path. The holder of the key is left in the request's state (its
name becomes each appended event's ``submitter``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from service.api.deps import Services
from service.api.problems import problem_of, send_problem
from service.domain.access import Access, Principal, allows, bearer, route_access
from service.domain.errors import Forbidden, FrontlineError, RateLimited, Unauthorized

log = structlog.get_logger("frontline.access")


def access_control(app: ASGIApp, services: Callable[[], Services]) -> ASGIApp:
    """ASGI middleware: let a request through to ``app`` only with the access it needs."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        path = scope["path"]
        need = route_access(scope["method"], path)
        if need == "open":
            await app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        try:
            principal = await _principal(services(), scope, need, path)
            if principal is not None:
                limiter.count(principal.name)
        except FrontlineError as error:
            await send_problem(send, problem_of(error, path, state.get("request_id")), error)
            return
        state["principal"] = principal
        await app(scope, receive, send)

    limiter = _Limiter(lambda: services().settings.rate_limit)
    return middleware


class _Limiter:
    """Requests per key per minute, in fixed one-minute windows, in this process."""

    def __init__(self, limit: Callable[[], int]) -> None:
        self.limit = limit
        self.window = 0
        self.counts: dict[str, int] = {}

    def count(self, name: str) -> None:
        """Count one request of ``name``; RateLimited when it is over the limit."""
        limit = self.limit()
        if limit <= 0:
            return
        now = time.time()
        window = int(now // 60)
        if window != self.window:
            self.window, self.counts = window, {}
        used = self.counts.get(name, 0) + 1
        self.counts[name] = used
        if used > limit:
            retry = max(1, math.ceil((window + 1) * 60 - now))
            log.info("excess_rate_limit_exceeded", key_name=name, limit=limit)
            raise RateLimited(
                f"this key made more than {limit} requests this minute; retry in {retry} s",
                retry_after=retry,
            )


async def _principal(services: Services, scope: Scope, need: Access, path: str) -> Principal | None:
    header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    key = bearer(header.decode("latin-1")) if header is not None else None
    if key is None:
        if need == "read" and services.settings.anonymous_reads == "true":
            return None
        log.info("authn_login_fail", reason="no key", path=path)
        raise Unauthorized("this route needs an API key: Authorization: Bearer <key>")
    hit, principal = services.keys.cached(key)
    if not hit:
        principal = await services.keys.find(key)
    if principal is None:
        log.info("authn_login_fail", reason="unknown or revoked key", path=path)
        raise Unauthorized("the API key is unknown or revoked")
    if not allows(principal.role, need):
        log.info("authz_fail", key_name=principal.name, role=principal.role, needs=need, path=path)
        raise Forbidden(f"a {principal.role} key may not use this route (it needs {need})")
    return principal
