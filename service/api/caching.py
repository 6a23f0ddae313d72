"""Conditional GET, the cache policy and gzip of every read answer, in one middleware.

Every ``GET`` a route answers with 200 gets, here and nowhere else:

* an ``ETag``, and 304 (no body) when ``If-None-Match`` names it;
* a ``Cache-Control``: an answer pinned to ``known_at=position:N`` with N at or below the
  position the projections have reached can never change (``max-age=31536000, immutable``);
  every other answer may be stored but is checked again each time (``no-cache``). It is
  ``public`` when the request needed no key, ``private`` when it did (a shared cache must
  not hand a keyed answer to someone without the key);
* gzip when the client accepts it and the answer is at least ``FRONTLINE_GZIP_MIN_BYTES``,
  and ``Vary: Accept, Accept-Encoding`` (``/v1/state`` answers GeoJSON for one ``Accept``).

A route's answer is pinned only when the route says it is a function of the query and the
known position alone (``opt={"pinnable": True}``: the front's reads and the export), the
query names ``known_at=position:N`` with N at or below the projections' position, and, when
the route takes ``valid_at`` (default: now), the query gives it.

The tag names the format version (:data:`FORMAT_VERSION`), the policy and its version and
the content coding, then a digest: of (path, query, ``Accept``) for a pinned answer, known
before the answer is read, so a client that holds it gets its 304 without the answer being
read at all; of the answer's bytes otherwise. A new policy or a new format therefore never
serves old bytes under a live tag, and a gzip body has a tag of its own (DESIGN section 8).

A route may give its own tag (the front as CSV gives its bytes' digest, as ``frontline
export`` prints it; the export gives one derived from the chain): it is kept, with ``-gzip``
added for a gzip body. Streams (SSE, NDJSON, the export) are passed through as they come,
never buffered or compressed: they get the cache policy, and keep the ETag their route gives.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

import anyio.to_thread
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.api.deps import Services
from service.api.etags import etag_matches
from service.domain.policy import SERVED

FORMAT_VERSION: Final = "f1"
"""The version of the answers' formats; raised when an answer's shape or encoding changes, so
that no tag given before names the new bytes."""
IMMUTABLE: Final = "max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"
VARY: Final = b"Accept, Accept-Encoding"
COMPRESSIBLE: Final = (b"application/json", b"application/geo+json", b"text/")
THREAD_BYTES: Final = 64 * 1024
"""Bodies at least this large are compressed in a worker thread (the event loop serves on)."""
GZIP_LEVEL: Final = 6
"""The compression level of a body under FAST_GZIP_BYTES."""
FAST_GZIP_BYTES: Final = 256 * 1024
FAST_GZIP_LEVEL: Final = 1
"""Bodies at least FAST_GZIP_BYTES long are gzipped at this level (nginx's default): deflate's
longer searches cost most on the largest answers and gain least on them. Measured on the
areas of a 1,000-place view (902 KB of coordinates): level 6 takes 44 ms for 319 KB, level 1
7 ms for 347 KB; a page of 1,000 places of /v1/state (493 KB): 6.4 ms for 51 KB, 3.3 ms for
62 KB (docs/map.md, "The areas' cost")."""
_DIGITS: Final = re.compile(r"^[0-9]{1,30}$")
PINNABLE: Final[dict[str, Any]] = {"pinnable": True}
"""A route's ``opt`` when its answer is a function of its query and the known position alone
(not of the registry's current entry, not of the clock once ``valid_at`` is given)."""


@dataclass(frozen=True, slots=True)
class Pin:
    """What a pinned answer is a function of, besides its query: the rows' policy."""

    policy: str
    policy_version: int


def accepts_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header takes gzip (``gzip`` or ``*`` with q above 0)."""
    if not header:
        return False
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def tag(policy: str, policy_version: int, coding: str, digest: str) -> str:
    """A strong entity tag naming the format version, the policy and the content coding."""
    return f'"{FORMAT_VERSION}-{policy}.{policy_version}-{coding}-{digest[:40]}"'


def pinned_digest(path: str, query: bytes, accept: str) -> str:
    """The digest of a pinned answer: what was asked, in full (the answer follows from it)."""
    seed = b"\n".join((path.encode(), query, accept.encode("latin-1")))
    return hashlib.sha256(seed).hexdigest()


def pinned_at(query: bytes) -> int | None:
    """N of ``known_at=position:N`` in a query string, or None."""
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "known_at" and value.startswith("position:"):
            number = value.removeprefix("position:")
            # Only ASCII digits (str.isdigit takes "²"); the route refuses anything else.
            return int(number) if _DIGITS.match(number) else None
    return None


def _given(query: bytes, name: str) -> bool:
    return any(n == name and v for n, v in parse_qsl(query.decode("latin-1")))


def _pinnable(scope: Scope) -> bool:
    """Whether the route's answer is a function of its query and the known position, and the
    query fixes every default that follows the clock (``valid_at``: now)."""
    handler: Any = scope.get("route_handler")
    if handler is None or not handler.opt.get("pinnable"):
        return False
    takes_valid_at = "valid_at" in handler.parsed_fn_signature.parameters
    return not takes_valid_at or _given(scope["query_string"], "valid_at")


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((v for k, v in headers if k.lower() == name), None)


def _without(headers: list[tuple[bytes, bytes]], *names: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() not in names]


def conditional_get(app: ASGIApp, services: Callable[[], Services]) -> ASGIApp:
    """The middleware around the routes (Litestar's ``middleware=``: matched routes only)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "GET":
            await app(scope, receive, send)
            return
        found = services()
        request_headers = dict(scope["headers"])
        if_none_match = request_headers.get(b"if-none-match", b"").decode("latin-1") or None
        accept = request_headers.get(b"accept", b"").decode("latin-1")
        gzip_ok = found.settings.gzip_min_bytes > 0 and accepts_gzip(
            request_headers.get(b"accept-encoding", b"").decode("latin-1")
        )
        keyed = scope.get("state", {}).get("principal") is not None
        pin: Pin | None = None
        asked = pinned_at(scope["query_string"])
        if asked is not None and _pinnable(scope):
            state = await found.front.projection()
            if asked <= state.position:
                pin = Pin(state.policy, state.policy_version)
        policy = "public" if not keyed else "private"
        cache_control = f"{policy}, {IMMUTABLE if pin else REVALIDATE}".encode()
        digest = None
        if pin is not None:
            digest = pinned_digest(scope["path"], scope["query_string"], accept)
            held = [tag(pin.policy, pin.policy_version, "identity", digest)]
            if gzip_ok:
                held.append(tag(pin.policy, pin.policy_version, "gzip", digest))
            for etag in held:
                if etag_matches(if_none_match, etag):
                    # The answer cannot have changed: it is not read at all.
                    await _not_modified(send, etag, cache_control)
                    return

        start: Any = None
        passing = False

        async def buffered(message: Message) -> None:
            nonlocal start, passing
            if passing:
                await send(message)
                return
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if message["status"] != 200:
                    passing = True
                    if message["status"] == 304 and _header(headers, b"cache-control") is None:
                        # A route's own 304 (the export's): the same policy as its 200.
                        message = {
                            **message,
                            "headers": [*headers, (b"cache-control", cache_control)],
                        }
                    await send(message)
                    return
                if _header(headers, b"content-length") is None:
                    # A stream: its chunks go out as they come.
                    passing = True
                    if _header(headers, b"cache-control") is None:
                        headers.append((b"cache-control", cache_control))
                    await send({**message, "headers": headers})
                    return
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            if message.get("more_body", False):
                # Sent in parts although its length was given: passed on as it is.
                passing = True
                await send(start)
                await send(message)
                return
            await _answer(start, message.get("body", b""))

        async def _answer(begun: Any, body: bytes) -> None:
            given = _header(list(begun.get("headers", [])), b"etag")
            headers = _without(list(begun.get("headers", [])), b"etag", b"vary")
            kind = _header(headers, b"content-type") or b""
            compress = (
                gzip_ok
                and len(body) >= found.settings.gzip_min_bytes
                and _header(headers, b"content-encoding") is None
                and kind.startswith(COMPRESSIBLE)
            )
            coding = "gzip" if compress else "identity"
            if given is not None:
                # The route's own tag (the front as CSV: its bytes' digest, as the CLI
                # prints it), with the coding named when the body is gzipped.
                etag = given.decode("latin-1")
                if compress:
                    etag = etag[:-1] + '-gzip"'
            elif pin is not None and digest is not None:
                etag = tag(pin.policy, pin.policy_version, coding, digest)
            else:
                etag = tag(SERVED.name, SERVED.version, coding, hashlib.sha256(body).hexdigest())
            headers = _without(headers, b"cache-control")
            headers += [
                (b"etag", etag.encode()),
                (b"cache-control", cache_control),
                (b"vary", VARY),
            ]
            if etag_matches(if_none_match, etag):
                await _not_modified(send, etag, cache_control)
                return
            if compress:
                body = (
                    await anyio.to_thread.run_sync(_gzip, body)
                    if len(body) >= THREAD_BYTES
                    else _gzip(body)
                )
                headers = _without(headers, b"content-length")
                headers += [
                    (b"content-encoding", b"gzip"),
                    (b"content-length", str(len(body)).encode()),
                ]
            answer: Any = {**begun, "headers": headers}
            await send(answer)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await app(scope, receive, buffered)

    return middleware


def _gzip(body: bytes) -> bytes:
    """gzip with no time stamp and a level set by the size: the same answer gives the same
    bytes."""
    level = FAST_GZIP_LEVEL if len(body) >= FAST_GZIP_BYTES else GZIP_LEVEL
    return gzip.compress(body, compresslevel=level, mtime=0)


async def _not_modified(send: Send, etag: str, cache_control: bytes) -> None:
    start: Any = {
        "type": "http.response.start",
        "status": 304,
        "headers": [
            (b"etag", etag.encode()),
            (b"cache-control", cache_control),
            (b"vary", VARY),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": b"", "more_body": False})
