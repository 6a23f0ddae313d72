"""The client's tests: the real app behind a real uvicorn in a thread of its own (so that the
sync client can block while the server serves), and a TCP proxy in front of it that can
misbehave as networks do (drop a connection before the answer, cut an answer half-way,
answer 503 as a load balancer would)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

import asyncpg
import pytest
import uvicorn

from service.app import create_app
from service.server import server_config
from service.settings import Settings

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Served:
    """A running server: its base URL and an admin key for it."""

    url: str
    key: str
    port: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def serve_in_thread(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, int]:
    """The app as ``frontline serve`` serves it, on a free port, in a thread of its own."""
    port = _free_port()
    server = uvicorn.Server(server_config(create_app(settings), settings, host=HOST, port=port))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    for _ in range(1500):
        if server.started:
            return server, thread, port
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        threading.Event().wait(0.01)
    raise RuntimeError("the server did not start within 15 s")


@pytest.fixture
def client_settings(settings: Settings) -> Settings:
    """The test database's settings, with a short heartbeat for the live stream."""
    return replace(settings, stream_heartbeat=1.0)


@pytest.fixture
def served(client_settings: Settings, admin_key: str) -> Iterator[Served]:
    """The real app on a real uvicorn (its own thread and event loop), and an admin key."""
    server, thread, port = serve_in_thread(client_settings)
    try:
        yield Served(url=f"http://{HOST}:{port}", key=admin_key, port=port)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def stored(url: str) -> int:
    """How many events the log holds, counted as the owner (not through the API)."""

    async def count() -> int:
        conn = await asyncpg.connect(url)
        try:
            found: int = await conn.fetchval("SELECT count(*) FROM events")
            return found
        finally:
            await conn.close()

    return asyncio.run(count())


class Proxy:
    """A TCP proxy in front of a server whose connections follow a plan, one action per
    connection in the order they are accepted (``pass`` once the plan is spent):

    * ``pass``: forward both ways;
    * ``swallow``: forward the request, wait for the first bytes of the answer, then close
      both sides without passing them on (the server did the work; the client never hears);
    * ``cut:<marker>``: forward the answer until ``marker`` has gone through, then close;
    * ``503``: answer ``503`` with ``Retry-After: 1`` at once, as a load balancer would.
    """

    def __init__(self, port: int, plan: list[str]) -> None:
        self.target = port
        self.plan = list(plan)
        self.accepted: list[str] = []
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            action = self.plan.pop(0) if self.plan else "pass"
            self.accepted.append(action)
            self._sockets.append(downstream)
            threading.Thread(target=self._serve, args=(downstream, action), daemon=True).start()

    def _serve(self, downstream: socket.socket, action: str) -> None:
        if action == "503":
            downstream.recv(65536)
            downstream.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n"
                b"content-type: text/plain\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy"
            )
            downstream.close()
            return
        upstream = socket.create_connection((HOST, self.target))
        self._sockets.append(upstream)
        threading.Thread(target=self._pump, args=(downstream, upstream), daemon=True).start()
        marker = action.removeprefix("cut:").encode() if action.startswith("cut:") else None
        seen = b""
        try:
            while data := upstream.recv(65536):
                if action == "swallow":
                    break
                if marker is not None:
                    seen += data
                    at = seen.find(marker)
                    if at >= 0:
                        keep = len(data) - (len(seen) - (at + len(marker)))
                        downstream.sendall(data[:keep])
                        break
                downstream.sendall(data)
        except OSError:
            pass
        finally:
            for end in (downstream, upstream):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture
def proxy(served: Served) -> Iterator[Proxy]:
    """A proxy in front of the served app; set ``proxy.plan`` before the first request."""
    made = Proxy(served.port, [])
    yield made
    made.close()
