"""The HTTP server: uvicorn (httptools, uvloop), with a guard on every connection.

uvicorn bounds neither the time a client may take to send a request head (its issue 157:
``timeout_keep_alive`` restarts on every byte, so a header line every few seconds holds a
connection for ever), nor the size of that head (httptools gathers a header of any length),
nor the number of open connections (``limit_concurrency`` answers 503 only once a head is
complete, which a slow client never sends). The guard adds the three, in uvicorn's own
protocol class (the ``http=`` hook of ``uvicorn.Config``), before the parser sees a byte:

* **Head size.** Bytes of a request head (``FRONTLINE_MAX_HEADER_BYTES``) and of any one of
  its lines (``FRONTLINE_MAX_HEADER_LINE``) are counted as they arrive, before the parser
  sees them; past either, the answer is 431 (414 for the request line) and the connection
  closes, so a 10 MB header costs at most one read buffer. Every head is counted, from the
  end of the message before it, whatever the answers are doing: a head pipelined behind a
  slow answer or a live stream too (its 431 follows the answers owed before it, which have
  the header timeout to finish; a live stream never does, and is ended). A body is never
  counted as a head.
* **Head time.** While no answer is owed, a connection must deliver a whole request head
  within ``FRONTLINE_HEADER_TIMEOUT`` seconds (of opening, or of the last answer owed): past
  it, 408, or a plain close when it sent nothing of a head. Time spent on a body being read
  and on the answers is not counted: a large import, requests pipelined behind a slow one,
  or a live stream are never cut by it.
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
import contextvars
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import tempfile
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Final

import msgspec
import structlog
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from contracts.problems import CATALOGUE, problem_type
from contracts.responses import Problem
from service.logging import LogTally
from service.metrics import MULTIPROCESS_ENV, forget_process
from service.settings import Settings

log = structlog.get_logger(__name__)

FILE_RESERVE: Final = 256
"""File descriptors kept free of client connections when the cap is automatic: the database
pool, the log, the embedded server's pipes, a file being read, with room to spare."""
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
    """uvicorn's server, which says when it listens (``on_started``: ``frontline serve``
    then prints where the map and the API document are), and tells the app as soon as it
    starts to stop: uvicorn waits
    for every request in flight before the app's lifespan ends, so an admin rebuild in
    flight held a SIGTERM for as long as it ran (and ``docker stop`` ended in SIGKILL).
    ``on_stop`` runs beside the shutdown from its start (``frontline serve``: it cancels
    the rebuild, whose request then answers 503) and is awaited at its end."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_stop: Callable[[], Awaitable[None]] | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.on_stop = on_stop
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's start (the app's lifespan, then the listening sockets); then
        ``on_started``, once the server accepts connections."""
        await super().startup(sockets)
        if self.started and self.on_started is not None:
            self.on_started()

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


def _raw_answer(status: int, reason: bytes, slug: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer with a problem body of the catalogue's type ``slug``, closing
    the connection."""
    kind = CATALOGUE[slug]
    assert kind.status == status, (slug, status)
    body = msgspec.json.encode(
        Problem(
            type=problem_type(slug),
            title=kind.title,
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
    connection admitted by the guard.

    The guard cuts what arrives into pieces that end where a message's part may end, and
    feeds the parser one piece at a time, so that it knows, byte for byte, what is a head
    and what is a body: a piece of a head is counted before the parser sees it (a head ends
    at an empty line, and a piece never goes past the first one); a Content-Length body is
    fed to its last byte and no further; a chunked body ends with an empty line too. The
    parser's own callbacks then say where the head ended (``on_headers_complete``) and
    where the message ended (``on_message_complete``): the next head is counted from
    there, whatever the answers are doing, so a head pipelined behind a slow answer or a
    live stream is bounded like any other. A message that the parser ends anywhere else
    than where the guard cut (it never should) closes the connection.
    """

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._admitted = False
        self._waiting = False
        self._in_head = True
        """The bytes arriving belong to a request head (else to a body)."""
        self._body_left: int | None = None
        """Bytes of a Content-Length body still to come; None for a chunked body."""
        self._in_request_line = True
        self._head_bytes = 0
        self._line_bytes = 0
        self._tail = b""
        self._ended = False
        """A message ended in the piece being fed."""
        self._feeding_head = False
        """The piece being fed is (the rest of) a head: no body byte may be in it."""
        self._desync = False
        self._refusal: bytes | None = None
        """The 431/414 answer owed once the answers before it are out."""
        self._running: RequestResponseCycle | None = None
        self._deadline: asyncio.TimerHandle | None = None

    # --- the connection's life ---

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not self.guard.admit(self):
            transport.write(
                _raw_answer(
                    503,
                    b"Service Unavailable",
                    "server-busy",
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
        running = self._running
        if running is not None and not running.response_complete:
            # uvicorn tells only the last request read (self.cycle) that its client left;
            # with requests pipelined, the one being answered may be an earlier one.
            running.disconnected = True
            running.message_event.set()

    def data_received(self, data: bytes) -> None:
        while data and self._refusal is None:
            ends_message = False
            self._feeding_head = self._in_head
            if self._in_head:
                cut = self._part_end(data)
                piece, data = data[:cut], data[cut:]
                refusal = self._head_refusal(piece)
                if refusal is not None:
                    self._refuse(refusal)
                    return
            elif self._body_left is not None:
                piece, data = data[: self._body_left], data[self._body_left :]
                self._body_left -= len(piece)
                ends_message = self._body_left == 0
            else:
                cut = self._part_end(data)
                piece, data = data[:cut], data[cut:]
            self._ended = False
            super().data_received(piece)
            if self.transport.is_closing() or self.parser is None:
                return
            if self._desync or (ends_message and not self._ended) or not piece:
                self._desync = True
                self.send_400_response("Invalid HTTP request received.")
                return

    def on_message_begin(self) -> None:
        if self._ended:  # a message began after one ended, inside one piece
            self._desync = True
        super().on_message_begin()

    def on_body(self, body: bytes) -> None:
        if self._feeding_head:  # the head ended before the piece did
            self._desync = True
        super().on_body(body)

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        self._in_head = False
        self._tail = b""
        self._body_left = self._body_length()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._ended = True
        self._in_head = True
        self._body_left = None
        self._in_request_line = True
        self._head_bytes = self._line_bytes = 0
        self._tail = b""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing() or self._answer_pending():
            return
        if self._refusal is not None:
            self._stop_waiting()
            self._answer_and_close(self._refusal)
        elif self._deadline is None:
            self._await_head()

    def shutdown(self) -> None:
        """The server stops (SIGTERM, SIGINT): idle connections close at once (uvicorn),
        requests in flight finish, and an answer still streaming SHUTDOWN_GRACE seconds
        later is ended as if its client had left."""
        self._stop_waiting()
        super().shutdown()
        cycle = self._running  # None before a first request
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self.loop.call_later(SHUTDOWN_GRACE, self._end_answer)

    def _end_answer(self) -> None:
        cycle = self._running
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

    def _answer_pending(self) -> bool:
        """Whether a request read on this connection still awaits (the end of) its answer:
        ``self.cycle`` is the last one read, and answers complete in order."""
        cycle: RequestResponseCycle | None = self.cycle
        return cycle is not None and not cycle.response_complete

    # --- the head ---

    def _await_head(self) -> None:
        """No answer is pending: from now, a whole request head must arrive within the
        header timeout (the rest of a body nobody reads any more included), and the
        connection may be closed to make room for a new one."""
        self._waiting = True
        self.guard.waiting[self] = None
        self.guard.waiting.move_to_end(self)
        # Armed from within an answer's task, whose context (its request id) is not this one.
        self._deadline = self.loop.call_later(
            self.guard.header_timeout, self._too_slow, context=contextvars.Context()
        )

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
        started = self._in_head and self._head_bytes > 0
        self._stop_waiting()
        self.guard.forget(self)
        if started:
            self.guard.slow.add("closed_partial")
            self._answer_and_close(
                _raw_answer(
                    408,
                    b"Request Timeout",
                    "request-timeout",
                    f"a request head must arrive within {self.guard.header_timeout:g} s",
                )
            )
        else:
            self.guard.slow.add("closed_silent" if self._in_head else "closed_body")
            self.transport.close()

    def _part_end(self, data: bytes) -> int:
        """Where the first piece of ``data`` ends: after the first empty line (the end of a
        head, or of a chunked body), counting the bytes before ``data``, else its end."""
        seen = self._tail + data
        ends = [at + len(mark) for mark in (b"\n\r\n", b"\n\n") if (at := seen.find(mark)) >= 0]
        cut = min(ends) - len(self._tail) if ends else len(data)
        self._tail = b"" if ends else seen[-2:]
        return cut

    def _body_length(self) -> int | None:
        """The length of the body whose head the parser just read (None: chunked), as the
        parser reads it: no body without Content-Length or Transfer-Encoding."""
        length = 0
        for name, value in self.headers:
            if name == b"transfer-encoding":
                return None
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:  # the parser refuses it (400)
                    return None
        return length

    def _head_refusal(self, piece: bytes) -> int | None:
        """Count ``piece``, the next bytes of a head: 414 when the request line is over the
        line limit, 431 when a header line or the whole head is over its limit, else None."""
        self._head_bytes += len(piece)
        lines = piece.split(b"\n")
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

    def _refuse(self, status: int) -> None:
        """Refuse the head being read: its answer follows the answers still owed to the
        requests before it (HTTP answers in order), which have the header timeout to finish,
        then the connection closes; the parser never sees the head, nor what follows it."""
        self.guard.large.add("uri_too_long" if status == 414 else "refused")
        limits = (
            f"a request line is at most {self.guard.max_header_line} bytes"
            if status == 414
            else f"a request head is at most {self.guard.max_header_bytes} bytes and a "
            f"line of it at most {self.guard.max_header_line} bytes"
        )
        reason = b"URI Too Long" if status == 414 else b"Request Header Fields Too Large"
        slug = "uri-too-long" if status == 414 else "header-too-large"
        self._refusal = _raw_answer(status, reason, slug, limits)
        self._stop_waiting()
        if not self._answer_pending():
            self._answer_and_close(self._refusal)
            return
        self._deadline = self.loop.call_later(
            self.guard.header_timeout, self._give_up, context=contextvars.Context()
        )

    def _give_up(self) -> None:
        """The answers before a refused head did not finish within the header timeout (a
        live stream never does): end them as if the client had left, and close."""
        self._deadline = None
        if self.transport.is_closing():
            return
        self.guard.large.add("closed_behind_answer")
        for cycle in (self._running, self.cycle):
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        self.transport.close()

    def _answer_and_close(self, answer: bytes) -> None:
        self.transport.write(answer)
        self.transport.close()


# --- several workers ---

WORKER_STOP_WAIT: Final = SHUTDOWN_GRACE + 25.0
"""Seconds a worker has, after SIGTERM, to finish its requests and close its pool before it
is killed."""
WORKER_RESTART_PAUSE: Final = 1.0
"""Seconds at least between two starts of the same worker (one that dies at start-up, on a
database that is down, is not restarted in a tight loop)."""

WorkerTarget = Callable[[Settings, socket.socket, int], None]
"""What a worker process runs: the settings, the listening socket it shares, its number."""


def listening_socket(settings: Settings) -> socket.socket:
    """The socket every worker accepts on, bound as uvicorn binds its own (``SO_REUSEADDR``,
    an IPv6 address when the host has a colon), inheritable by the workers."""
    config = uvicorn.Config(
        "service.app:create_app", host=settings.host, port=settings.port, log_config=None
    )
    sock = config.bind_socket()
    sock.set_inheritable(True)
    return sock


def run_workers(settings: Settings, target: WorkerTarget) -> None:
    """Run ``settings.workers`` processes of ``target`` on one listening socket, until a
    signal (SIGTERM or SIGINT, which the caller turns into an exception) stops this one.

    The workers are started fresh (``spawn``: nothing of this process's state is copied) and
    the kernel spreads the connections among them. A worker that exits while the others
    serve is started again (at most once a WORKER_RESTART_PAUSE). On the way out each gets
    SIGTERM (a clean stop: its requests finish, its pool closes) and is killed only after
    WORKER_STOP_WAIT seconds. Figures of ``GET /metrics`` are added up across the workers
    through ``PROMETHEUS_MULTIPROC_DIR``: a private folder is made (and removed) when it is
    not set.
    """
    metrics_dir: str | None = None
    if not os.environ.get(MULTIPROCESS_ENV):
        metrics_dir = tempfile.mkdtemp(prefix="frontline-metrics-")
        os.environ[MULTIPROCESS_ENV] = metrics_dir
    sock = listening_socket(settings)
    context = multiprocessing.get_context("spawn")
    workers: list[Any] = []
    started: list[float] = []

    def start(index: int) -> Any:
        process = context.Process(
            target=target, args=(settings, sock, index), name=f"frontline-worker-{index}"
        )
        process.start()
        log.info("worker_started", worker=index, pid=process.pid)
        return process

    try:
        for index in range(settings.workers):
            workers.append(start(index))
            started.append(time.monotonic())
        while True:
            time.sleep(0.2)
            for index, process in enumerate(workers):
                if process.is_alive() or time.monotonic() - started[index] < WORKER_RESTART_PAUSE:
                    continue
                log.warning("worker_exited", worker=index, pid=process.pid, code=process.exitcode)
                forget_process(process.pid)
                workers[index] = start(index)
                started[index] = time.monotonic()
    finally:
        for process in workers:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + WORKER_STOP_WAIT
        for process in workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("worker_killed", pid=process.pid)
                process.kill()
                process.join()
                forget_process(process.pid)
        sock.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            del os.environ[MULTIPROCESS_ENV]
