"""HEAD on every GET route (RFC 9110 section 9.3.2): the GET's status and headers, no body.

Litestar routes a method only to a handler declared for it, so a HEAD met 405. This wrapper
sits outside the routing: a HEAD is answered as the same GET would be (the key check, the
ETag and 304, the cache policy and ``Content-Length`` included: a client or a proxy learns an
answer's size and tag without its bytes) and the body is dropped on the way out. A streamed
answer (the live stream, an export) ends as soon as its headers are sent: the app is told the
client left. A path no GET route takes answers as a GET to it would (404, 405 naming the
methods), with no body either.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send


def head_as_get(app: ASGIApp) -> ASGIApp:
    """ASGI wrapper: a HEAD request runs as its GET and is answered without the body."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return
        started = False
        ended = False

        async def receive_until_answered() -> ReceiveMessage:
            # Once the headers are out the client has all it asked for: a stream stops here.
            if started:
                return {"type": "http.disconnect"}
            return await receive()

        async def send_without_body(message: Message) -> None:
            nonlocal started, ended
            if message["type"] == "http.response.start":
                started = True
                await send(message)
            elif message["type"] == "http.response.body" and not ended:
                ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await app({**scope, "method": "GET"}, receive_until_answered, send_without_body)

    return wrapper
