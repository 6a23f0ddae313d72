"""CORS: pages served from the origins ``FRONTLINE_CORS_ORIGINS`` names may call the API from
a browser (none by default).

Outside the key check, so that a preflight (an ``OPTIONS`` a browser sends without the key,
before a request that carries one) is answered at once, and so that every answer to an
allowed origin, a 401, 404 or 429 included, carries ``Access-Control-Allow-Origin`` and the
headers a client reads (``ETag``, ``Link``, ``Location``, ``Retry-After``...): a browser
hides from the page any answer without them. The policy (which origin, the preflight's
headers) is Litestar's ``CORSConfig``; Litestar's own CORS middleware runs inside the app,
after the key check, where a preflight would meet a 401.
"""

from __future__ import annotations

from typing import Final

from litestar.config.cors import CORSConfig
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS: Final = ("GET", "HEAD", "POST", "OPTIONS")
ALLOWED_HEADERS: Final = (
    "authorization",
    "content-type",
    "frontline-min-position",
    "idempotency-key",
    "if-none-match",
    "last-event-id",
    "x-request-id",
)
"""Request headers a page may send (besides the CORS-safelisted ones)."""
EXPOSED_HEADERS: Final = (
    "content-disposition",
    "etag",
    "frontline-served-at",
    "frontline-served-by",
    "link",
    "location",
    "retry-after",
    "www-authenticate",
    "x-frontline-position",
    "x-request-id",
)
"""Answer headers a page may read (besides the CORS-safelisted ones: Cache-Control,
Content-Type, Content-Length, Expires, Last-Modified...)."""
MAX_AGE: Final = 600
"""Seconds a browser may keep a preflight's answer."""


def cors_config(origins: tuple[str, ...]) -> CORSConfig | None:
    """The CORS policy for these origins (``("*",)``: any), or None for none."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        max_age=MAX_AGE,
    )


def _header(scope: Scope, name: bytes) -> str | None:
    value = next((v for k, v in scope["headers"] if k == name), None)
    return None if value is None else value.decode("latin-1")


def _with_vary(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``Vary: Origin`` added to the answer's ``Vary`` (kept as one header)."""
    present = [v for k, v in headers if k.lower() == b"vary"]
    rest = [(k, v) for k, v in headers if k.lower() != b"vary"]
    words = [w.strip() for v in present for w in v.decode("latin-1").split(",") if w.strip()]
    if not any(w.lower() == "origin" for w in words):
        words.append("Origin")
    return [*rest, (b"vary", ", ".join(words).encode("latin-1"))]


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [
        (k.lower().encode(), v.encode())
        for k, v in headers.items()
        if k.lower() not in ("access-control-allow-origin", "vary")
    ]


def cors(app: ASGIApp, config: CORSConfig | None) -> ASGIApp:
    """ASGI middleware: answer an allowed origin's preflight, and give every answer to an
    allowed origin its CORS headers; anything else goes through untouched (without CORS
    headers a browser keeps the answer from the page)."""
    if config is None:
        return app
    # The policy's own headers, without the allowed origin (written per request below).
    simple = _encoded(config.simple_headers)
    preflight = _encoded(config.preflight_headers)
    any_origin = config.is_allow_all_origins

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        allowed = origin is not None and config.is_origin_allowed(origin)
        if not allowed:
            if any_origin:
                await app(scope, receive, send)
                return

            async def send_varied(message: Message) -> None:
                # The answer differs by Origin: a shared cache must not serve it to another.
                if message["type"] == "http.response.start":
                    message = {**message, "headers": _with_vary(list(message["headers"]))}
                await send(message)

            await app(scope, receive, send_varied)
            return
        assert origin is not None
        allow_origin = [(b"access-control-allow-origin", b"*" if any_origin else origin.encode())]
        if (
            scope["method"] == "OPTIONS"
            and _header(scope, b"access-control-request-method") is not None
        ):
            headers = [*preflight, *allow_origin, (b"content-length", b"0")]
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": headers if any_origin else _with_vary(headers),
                }
            )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-")
                ]
                headers = [*kept, *simple, *allow_origin]
                message = {**message, "headers": headers if any_origin else _with_vary(headers)}
            await send(message)

        await app(scope, receive, send_with_cors)

    return middleware
