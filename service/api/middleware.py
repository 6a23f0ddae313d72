"""One log line per request, with a request id bound for everything logged meanwhile.

A client that goes away before it has its answer (it sent part of a body and closed, say) is
the client's abort, not a server error: its line says status 499 (nginx's "client closed
request"), a ``client_abort`` line says so, and the metrics count it under 499, whatever
the app answered into the closed connection (Litestar answers a body cut short with 500)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Final

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from service.metrics import Metrics

log = structlog.get_logger("frontline.request")

_SAFE_ID: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
CLIENT_ABORT: Final = 499
"""The status logged for a request whose client left before the answer started."""


def request_logging(app: ASGIApp, metrics: Metrics) -> ASGIApp:
    """ASGI middleware: request id (``X-Request-ID`` kept if sane), timing, one log line,
    and the request counted in ``metrics`` by its route's template."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        answering = False
        aborted = False
        started = time.perf_counter()

        async def receive_watching() -> ReceiveMessage:
            nonlocal aborted
            message = await receive()
            if message["type"] == "http.disconnect" and not answering:
                aborted = True  # before the answer started: the client gave up
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, answering
            if message["type"] == "http.response.start":
                answering = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await app(scope, receive_watching, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                method = scope.get("method", "")
                if aborted:
                    status = CLIENT_ABORT
                    log.info("client_abort", method=method, path=scope["path"])
                log.info(
                    "request",
                    request_id=request_id,
                    method=method,
                    path=scope["path"],
                    status=status,
                    duration_ms=round(seconds * 1000, 3),
                )
                route = scope.get("path_template") or "(no route)"
                metrics.observe_request(method, route, status, seconds)

    return middleware
