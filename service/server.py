"""The HTTP server: uvicorn (httptools, uvloop), with a guard on every connection.

uvicorn bounds neither the time a client may take to send a request head (its issue 157:
``timeout_keep_alive`` restarts on every byte, so a header line every few seconds holds a
connection for ever), nor the size of that head (httptools gathers a header of any length),
nor the number of open connections (``limit_concurrency`` answers 503 only once a head is
complete, which a slow client never sends). The guard adds the three, in uvicorn's own
protocol class (the ``http=`` hook of ``uvicorn.Config``), before the parser sees a byte:

* **Head size.** Bytes of a request head (``FRONTLINE_MAX_HEADER_BYTES``) and of any one of
  its lines (``FRONTLINE_MAX_HEADER_LINE``) are counted as they arrive; past either, the
  answer is 431 (414 for the request line) and the connection closes, so a 10 MB header
  costs at most one read buffer.
* **Head time.** A connection must deliver a whole request head within
  ``FRONTLINE_HEADER_TIMEOUT`` seconds of opening, or of its previous answer (408, or a
  plain close when it sent nothing). Time spent on the body and on the answer is not
  counted: a large import or a live stream is never cut by it.
* **Shutdown.** uvicorn waits for every connection to close before it stops, and a live
  stream never closes by itself: an answer still streaming SHUTDOWN_GRACE seconds after
  SIGTERM or SIGINT is ended as if its client had left (it resumes with Last-Event-ID).
* **Connections.** At ``FRONTLINE_MAX_CONNECTIONS`` open connections (default: the file limit
  minus 256, so the process never runs out of file descriptors and can always open its
  database connections and files), a new connection closes the one that has waited longest
  for its request head (a slow or idle client) to take its place; when every connection is
  busy with a request, the new one gets 503 and is closed.

Each time the guard sheds load it says so, with OWASP-style names, at most once a second
per kind with counts (an attack must not flood the log either):
``excess_connection_limit_exceeded``, ``excess_header_time_exceeded``,
``excess_header_size_exceeded``.
"""

from __future__ import annotations

import asyncio
import resource
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Final

import msgspec
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from contracts.responses import Problem
from service.logging import LogTally
from service.settings import Settings

FILE_RESERVE: Final = 256
"""File descriptors kept free of client connections when the cap is automatic: the database
pool, the log, the embedded server's pipes, a file being read, with room to spare."""
TYPE_BASE: Final = "https://frontline.dev/problems/"
SHUTDOWN_GRACE: Final = 5.0
"""Seconds an answer still streaming out when the server stops may go on (a live stream
never ends by itself; uvicorn waits for every connection to close)."""


def connection_cap(settings: Settings) -> int:
    """The most connections this process keeps open (``FRONTLINE_MAX_CONNECTIONS``, or the
    soft file limit minus FILE_RESERVE)."""
    if settings.max_connections > 0:
        return settings.max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(16, soft - FILE_RESERVE)


class Server(uvicorn.Server):
    """uvicorn's server, which tells the app as soon as it starts to stop: uvicorn waits
    for every request in flight before the app's lifespan ends, so an admin rebuild in
    flight held a SIGTERM for as long as it ran (and ``docker stop`` ended in SIGKILL).
    ``on_stop`` runs beside the shutdown from its start (``frontline serve``: it cancels
    the rebuild, whose request then answers 503) and is awaited at its end."""

    def __init__(
        self, config: uvicorn.Config, on_stop: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        super().__init__(config)
        self.on_stop = on_stop

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        stopping = None if self.on_stop is None else asyncio.ensure_future(self.on_stop())
        try:
            await super().shutdown(sockets)
        finally:
            if stopping is not None:
                await stopping


def server_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """uvicorn's configuration as ``frontline serve`` runs it: the guarded protocol, no
    access log (the app logs one line per request), host and port from the settings."""
    guard = ConnectionGuard(
        max_connections=connection_cap(settings),
        max_header_bytes=settings.max_header_bytes,
        max_header_line=settings.max_header_line,
        header_timeout=settings.header_timeout,
    )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": guarded_protocol(guard),
        "log_config": None,
        "access_log": False,
        **overrides,
    }
    return uvicorn.Config(app, **options)


class ConnectionGuard:
    """What the connections of one server share: the cap, who waits for a head, the tallies."""

    def __init__(
        self,
        *,
        max_connections: int,
        max_header_bytes: int,
        max_header_line: int,
        header_timeout: float,
    ) -> None:
        self.max_connections = max_connections
        self.max_header_bytes = max_header_bytes
        self.max_header_line = max_header_line
        self.header_timeout = header_timeout
        self.open: set[GuardedProtocol] = set()
        self.waiting: OrderedDict[GuardedProtocol, None] = OrderedDict()
        """Connections waiting for a request head, the longest-waiting first."""
        self.connections = LogTally("excess_connection_limit_exceeded", limit=max_connections)
        self.slow = LogTally("excess_header_time_exceeded", timeout_s=header_timeout)
        self.large = LogTally(
            "excess_header_size_exceeded", limit_bytes=max_header_bytes, line_bytes=max_header_line
        )

    def admit(self, connection: GuardedProtocol) -> bool:
        """Make room for ``connection`` (closing the longest-waiting one at the cap); False
        when every open connection is busy with a request."""
        if len(self.open) >= self.max_connections:
            if not self.waiting:
                self.connections.add("refused")
                return False
            oldest = next(iter(self.waiting))
            oldest.shed()
            self.connections.add("closed_waiting")
        self.open.add(connection)
        return True

    def forget(self, connection: GuardedProtocol) -> None:
        self.open.discard(connection)
        self.waiting.pop(connection, None)


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedProtocol]:
    """The protocol class for uvicorn's ``http=``, its connections sharing ``guard``."""
    return type("FrontlineHttpProtocol", (GuardedProtocol,), {"guard": guard})


def _raw_answer(status: int, reason: bytes, title: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer with a problem body, closing the connection."""
    body = msgspec.json.encode(
        Problem(
            type=TYPE_BASE + title.lower().replace(" ", "-"),
            title=title,
            status=status,
            detail=detail,
            field={431: "headers", 414: "path"}.get(status),
        )
    )
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/problem+json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, reason, len(body), body)
    )


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the head's size and time bounded and the
    connection admitted by the guard."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._admitted = False
        self._waiting = False
        self._in_request_line = True
        self._head_bytes = 0
        self._line_bytes = 0
        self._tail = b""
        self._deadline: asyncio.TimerHandle | None = None

    # --- the connection's life ---

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not self.guard.admit(self):
            transport.write(
                _raw_answer(
                    503,
                    b"Service Unavailable",
                    "Server busy",
                    "every connection of the server is busy with a request; retry shortly",
                )
            )
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._stop_waiting()
        self.guard.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        refusal = self._head_refusal(data) if self._waiting else None
        if refusal is not None:
            self._stop_waiting()
            self.guard.large.add("uri_too_long" if refusal == 414 else "refused")
            limits = (
                f"a request line is at most {self.guard.max_header_line} bytes"
                if refusal == 414
                else f"a request head is at most {self.guard.max_header_bytes} bytes and a "
                f"line of it at most {self.guard.max_header_line} bytes"
            )
            reason = b"URI Too Long" if refusal == 414 else b"Request Header Fields Too Large"
            title = "URI too long" if refusal == 414 else "Header too large"
            self._answer_and_close(_raw_answer(refusal, reason, title, limits))
            return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._await_head()

    def shutdown(self) -> None:
        """The server stops (SIGTERM, SIGINT): idle connections close at once (uvicorn),
        requests in flight finish, and an answer still streaming SHUTDOWN_GRACE seconds
        later is ended as if its client had left."""
        self._stop_waiting()
        super().shutdown()
        cycle: RequestResponseCycle | None = self.cycle  # None before a first request
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self.loop.call_later(SHUTDOWN_GRACE, self._end_answer)

    def _end_answer(self) -> None:
        cycle: RequestResponseCycle | None = self.cycle
        if cycle is None or cycle.response_complete or self.transport.is_closing():
            return
        cycle.disconnected = True
        cycle.message_event.set()
        self.transport.close()

    def shed(self) -> None:
        """Close this waiting connection to make room for a new one."""
        self._stop_waiting()
        self.guard.forget(self)
        self.transport.close()

    # --- the head ---

    def _await_head(self) -> None:
        """From now, a whole request head must arrive within the header timeout."""
        self._waiting = True
        self._in_request_line = True
        self._head_bytes = self._line_bytes = 0
        self._tail = b""
        self.guard.waiting[self] = None
        self.guard.waiting.move_to_end(self)
        self._deadline = self.loop.call_later(self.guard.header_timeout, self._too_slow)

    def _stop_waiting(self) -> None:
        self._waiting = False
        self.guard.waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        started = self._head_bytes > 0
        self._stop_waiting()
        self.guard.forget(self)
        self.guard.slow.add("closed_partial" if started else "closed_silent")
        if started:
            self._answer_and_close(
                _raw_answer(
                    408,
                    b"Request Timeout",
                    "Request timeout",
                    f"a request head must arrive within {self.guard.header_timeout:g} s",
                )
            )
        else:
            self.transport.close()

    def _head_refusal(self, data: bytes) -> int | None:
        """Count the bytes of ``data`` that belong to the head: 414 when the request line is
        over the line limit, 431 when a header line or the whole head is over its limit,
        else None."""
        seen = self._tail + data
        ends = [at for at in (seen.find(b"\r\n\r\n"), seen.find(b"\n\n")) if at >= 0]
        if ends:
            end = min(ends) + (4 if seen.startswith(b"\r\n\r\n", min(ends)) else 2)
            part = data[: max(0, end - len(self._tail))]
        else:
            part = data
        self._tail = seen[-3:]
        self._head_bytes += len(part)
        lines = part.split(b"\n")
        first = self._line_bytes + len(lines[0])
        request_line = self._in_request_line
        if len(lines) > 1:
            self._in_request_line = False
        self._line_bytes = first if len(lines) == 1 else len(lines[-1])
        limit = self.guard.max_header_line
        if first > limit:
            return 414 if request_line else 431
        if any(len(line) > limit for line in lines[1:]):
            return 431
        return 431 if self._head_bytes > self.guard.max_header_bytes else None

    def _answer_and_close(self, answer: bytes) -> None:
        self.transport.write(answer)
        self.transport.close()
