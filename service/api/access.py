"""Keys checked before routing: one ASGI wrapper, the access each request needs from its
method and path (:func:`route_access`, the README's table).

401 for a missing, unknown or revoked key, 403 for a known key whose role lacks the access;
both logged with OWASP names, never with the key. A key seen in the last
``FRONTLINE_KEY_CACHE`` seconds is checked without an await or a hash, so the check costs a
dict look-up on the hot path. The holder of the key is left in the request's state (its
name becomes each appended event's ``submitter``).

Every request that needs a key is counted against a rate limit, per process
(``service.api.ratelimit``): a valid key's requests by the key's name
(``FRONTLINE_RATE_LIMIT``), and everything else by the client's address
(``FRONTLINE_ANONYMOUS_RATE_LIMIT``): anonymous reads, and requests with no key, an unknown,
revoked or over-long key. A key longer than any minted one is refused before it is hashed,
looked up or remembered; a key never seen live is looked up only while its address is
within its limit, so bogus keys cost neither memory nor unbounded database look-ups, and a
key seen live before is always looked up again (its holder is not locked out by others
sharing its address).
"""

from __future__ import annotations

import posixpath
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from service.api.deps import Services
from service.api.errors import Forbidden, RateLimited, Unauthorized
from service.api.problems import problem_of, send_problem
from service.api.ratelimit import RateLimiter, Verdict
from service.domain.errors import FrontlineError
from service.logging import LogTally
from service.roles import KEY_LENGTH, Access, Principal, allows

log = structlog.get_logger("frontline.access")


OPEN_PATHS: Final = frozenset({"/health", "/ready", "/metrics", "/schema"})
"""Paths open to anyone (and everything below ``/schema``)."""

MAP_PREFIX: Final = "/map/"
"""The map page is ``/``; its files are below this prefix. Both are open to GET and HEAD:
the page holds no data, it reads the front through ``/v1/`` with the user's key."""
_PLACE_EDIT: Final = re.compile(r"/v1/places/[^/]+/(?:merges|unmerges)")
"""The place registry's edits (merges and unmerges): the ``editor`` role's, like sides'."""


def route_access(method: str, path: str) -> Access:
    """The access a request needs, from its method and path (README's table, in code).

    The path is first normalised as a router could read it (repeated slashes collapsed,
    ``.`` and ``..`` resolved, no trailing slash), so no spelling of a route escapes its
    rule. Only OPEN_PATHS and the map page (GET and HEAD of ``/`` and below MAP_PREFIX)
    are open; every other path outside ``/v1/`` needs ``admin`` (a
    new route is closed until it is given a rule, and nobody learns which paths exist
    without a key). Inside ``/v1/``, a method no route takes needs ``admin`` too.
    """
    clean = posixpath.normpath("/" + path.lstrip("/"))
    if clean in OPEN_PATHS or clean.startswith("/schema/"):
        return "open"
    if method in ("GET", "HEAD") and (clean == "/" or clean.startswith(MAP_PREFIX)):
        return "open"
    if not clean.startswith("/v1/"):
        return "admin"
    if clean.startswith("/v1/admin/"):
        return "admin"
    if clean.startswith("/v1/audit/") or clean == "/v1/export":
        return "audit"
    if method == "POST" and clean in ("/v1/events", "/v1/imports"):
        return "ingest"
    if method == "POST" and clean in ("/v1/sides", "/v1/sources"):
        return "edit"
    if method == "POST" and _PLACE_EDIT.fullmatch(clean):
        return "edit"
    if method in ("GET", "HEAD"):
        return "read"
    return "admin"


def bearer(header: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, or None."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def access_control(
    app: ASGIApp,
    services: Callable[[], Services],
    unrouted: Callable[[Scope], FrontlineError | None] = lambda _: None,
) -> ASGIApp:
    """ASGI middleware: let a request through to ``app`` only with the access it needs.

    A request no route takes (``unrouted`` says why: no such path, 404; not a method of the
    path, 405) is answered before the key check: the route table is public (``/schema``),
    so a 401 there hid nothing and told a client with a typo the wrong thing."""
    limits: list[_Limits] = []  # made on the first request, from the settings of then

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
        refusal = unrouted(scope)
        if refusal is not None:
            await send_problem(send, problem_of(refusal, path, state.get("request_id")), refusal)
            return
        try:
            found = services()
            if not limits:
                limits.append(_Limits.of(found))
            principal = await _principal(found, limits[0], scope, need, path)
            _admit_stream(found, principal, scope["method"], path)
        except FrontlineError as error:
            await send_problem(send, problem_of(error, path, state.get("request_id")), error)
            return
        state["principal"] = principal
        await app(scope, receive, send)

    return middleware


LIVE_STREAM: Final = "/v1/events/stream"


def _admit_stream(services: Services, principal: Principal | None, method: str, path: str) -> None:
    """A live stream its owner may not open now is refused here, before routing: a flood of
    anonymous streams over their cap costs no more than a flood of bad keys."""
    if method == "GET" and posixpath.normpath("/" + path.lstrip("/")) == LIVE_STREAM:
        services.live.check(None if principal is None else principal.name)


@dataclass(frozen=True, slots=True)
class _Limits:
    """The two rate limits of this process: by key name, and by client address. Refusals
    are logged at most once a second, counted by key name and by address."""

    keys: RateLimiter
    addresses: RateLimiter
    key_refusals: LogTally
    address_refusals: LogTally

    @classmethod
    def of(cls, services: Services) -> _Limits:
        settings = services.settings
        return cls(
            RateLimiter(settings.rate_limit),
            RateLimiter(settings.anonymous_rate_limit),
            LogTally(
                "excess_rate_limit_exceeded", flat=False, by="key_name", limit=settings.rate_limit
            ),
            LogTally(
                "excess_rate_limit_exceeded",
                flat=False,
                by="client",
                limit=settings.anonymous_rate_limit,
            ),
        )

    def count_key(self, name: str) -> None:
        """One request by the key ``name``; RateLimited past its limit."""
        verdict = self.keys.take(name, time.monotonic())
        if not verdict.allowed:
            self.key_refusals.add(name)
            raise _refused(verdict, f"this key made more than {self.keys.limit} requests a minute")

    def count_address(self, address: str, *, take: bool = True) -> None:
        """One request without a valid key from ``address`` (``take=False``: only check that
        one would pass); RateLimited past its limit."""
        now = time.monotonic()
        verdict = self.addresses.take(address, now) if take else self.addresses.peek(address, now)
        if not verdict.allowed:
            self.address_refusals.add(address)
            raise _refused(
                verdict,
                f"this address made more than {self.addresses.limit} requests a minute "
                "without a valid key",
            )


def _refused(verdict: Verdict, why: str) -> RateLimited:
    return RateLimited(f"{why}; retry in {verdict.retry_after} s", retry_after=verdict.retry_after)


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _principal(
    services: Services, limits: _Limits, scope: Scope, need: Access, path: str
) -> Principal | None:
    address = _address(scope)
    header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    key = bearer(header.decode("latin-1")) if header is not None else None
    if key is None:
        limits.count_address(address)
        if need == "read" and services.settings.anonymous_reads == "true":
            return None
        log.info("authn_login_fail", reason="no key", path=path, client=address)
        raise Unauthorized("this route needs an API key: Authorization: Bearer <key>")
    if len(key) > KEY_LENGTH:
        limits.count_address(address)
        log.info("authn_login_fail", reason="key too long", path=path, client=address)
        raise Unauthorized("the API key is unknown or revoked")
    hit, principal = services.keys.cached(key)
    if not hit:
        if not services.keys.known_before(key):
            # A key never seen live is looked up only while its address is within its limit:
            # a flood of bogus keys costs no database look-ups once it is over.
            limits.count_address(address, take=False)
        principal = await services.keys.find(key)
    if principal is None:
        limits.count_address(address)
        log.info("authn_login_fail", reason="unknown or revoked key", path=path, client=address)
        raise Unauthorized("the API key is unknown or revoked")
    limits.count_key(principal.name)
    if not allows(principal.role, need):
        log.info("authz_fail", key_name=principal.name, role=principal.role, needs=need, path=path)
        raise Forbidden(f"a {principal.role} key may not use this route (it needs {need})")
    return principal
