"""Keys checked before routing: one ASGI wrapper, the access each request needs from its
method and path (``service.domain.access.route_access``, the README's table).

401 for a missing, unknown or revoked key, 403 for a known key whose role lacks the access;
both logged with OWASP names, never with the key. A key seen in the last
``FRONTLINE_KEY_CACHE`` seconds is checked without an await or a hash, so the check costs a
dict look-up on the hot path. The holder of the key is left in the request's state (its
name becomes each appended event's ``submitter``).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from service.api.deps import Services
from service.api.problems import problem_of, send_problem
from service.domain.access import Access, allows, bearer, route_access
from service.domain.errors import Forbidden, FrontlineError, Unauthorized

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
            state["principal"] = await _principal(services(), scope, need, path)
        except FrontlineError as error:
            await send_problem(send, problem_of(error, path, state.get("request_id")))
            return
        await app(scope, receive, send)

    return middleware


async def _principal(services: Services, scope: Scope, need: Access, path: str) -> object:
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
