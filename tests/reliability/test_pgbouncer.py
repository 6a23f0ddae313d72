"""The service behind a real PgBouncer in transaction mode (Debian's ``pgbouncer``, which
``make pytest`` installs): appends, reads and a live stream, with every service connection
multiplexed over two server connections."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg

from bench.servers import free_port
from service.store.db import EMBEDDED_LOGIN, with_user
from tests.reliability.test_workers import admin_key, client, event, served

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def _target(url: str) -> tuple[str, int, str]:
    """The host (or socket folder), port and database of a PostgreSQL URL."""
    parts = urlsplit(url)
    host = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
    return host, parts.port or 5432, parts.path.lstrip("/")


@contextlib.contextmanager
def pgbouncer(server_url: str, users: list[str]) -> Iterator[int]:
    """PgBouncer in transaction mode in front of ``server_url``'s server, on a free port of
    127.0.0.1: two server connections per database and user, trust authentication for
    ``users`` (the server's own authentication applies behind it). Runs as the user who
    owns the server's socket folder when started as root (PgBouncer refuses root)."""
    host, port, _ = _target(server_url)
    listen = free_port()
    folder = Path(tempfile.mkdtemp(prefix="frontline-pgbouncer-"))
    folder.chmod(0o755)
    (folder / "users.txt").write_text("".join(f'"{user}" ""\n' for user in users))
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={host} port={port}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {listen}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {folder / 'users.txt'}\n"
        "pool_mode = transaction\n"
        "default_pool_size = 2\n"
        "max_client_conn = 200\n"
        "server_reset_query =\n"
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (folder / name).chmod(0o644)
    command = [PGBOUNCER]
    if os.geteuid() == 0:
        owner = os.stat(host).st_uid if host.startswith("/") else 0
        command += ["-u", pwd.getpwuid(owner).pw_name if owner else "nobody"]
    log = (folder / "pgbouncer.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 (Debian's pgbouncer)
        [*command, str(folder / "pgbouncer.ini")], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((folder / "pgbouncer.log").read_text())
            time.sleep(0.1)
        yield listen
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def through(url: str, port: int) -> str:
    """``url``'s user and database, reached through PgBouncer on 127.0.0.1:``port``."""
    parts = urlsplit(url)
    user = parts.username or "postgres"
    return urlunsplit(("postgresql", f"{user}@127.0.0.1:{port}", parts.path, "", ""))


async def test_the_service_works_through_pgbouncer_in_transaction_mode(
    server_url: str, fresh_db: str, tmp_path: Path
) -> None:
    """Behind PgBouncer in transaction mode (ten service connections over two server ones):
    32 concurrent appends and reads answer 2xx with dense positions, a live stream opened
    before them delivers every event (its listener on the direct URL), and verify passes."""
    external = bool(os.environ.get("DATABASE_URL"))
    login_url = fresh_db if external else with_user(fresh_db, EMBEDDED_LOGIN)
    login = urlsplit(login_url).username or "postgres"
    _, _, database = _target(fresh_db)
    owner = await asyncpg.connect(fresh_db)
    try:
        # The reads (single statements, outside any transaction) act as the service role
        # through the login role's default, as docs/deployment.md tells the operator.
        await owner.execute(f"ALTER ROLE {login} IN DATABASE {database} SET role = frontline_app")
    finally:
        await owner.close()
    key = await admin_key(fresh_db)
    with pgbouncer(server_url, [login]) as port:
        env = {
            "DATABASE_URL": through(login_url, port),
            "FRONTLINE_DB_POOLER": "transaction",
            "FRONTLINE_DIRECT_URL": login_url,
            "FRONTLINE_MIGRATE_DATABASE_URL": fresh_db,
            "FRONTLINE_STREAM_POLL": "60",
            "FRONTLINE_LOG_FORMAT": "json",
        }
        with served(env, tmp_path / "service.log") as server:
            async with client(server, key) as http:
                posted = [event(n) for n in range(32)]
                async with http.stream(
                    "GET", "/v1/events/stream", headers={"accept": "text/event-stream"}
                ) as stream:
                    assert stream.status_code == 200
                    await asyncio.sleep(1.0)

                    async def write_and_read(body: dict[str, object]) -> None:
                        response = await http.post("/v1/events", json=body)
                        assert response.status_code == 201, response.text
                        read = await http.get("/v1/events", params={"limit": 5})
                        assert read.status_code == 200, read.text

                    await asyncio.gather(*(write_and_read(body) for body in posted))
                    seen = ""
                    async with asyncio.timeout(10):
                        async for chunk in stream.aiter_text():
                            seen += chunk
                            if all(body["id"] in seen for body in posted):
                                break
                state = await http.get("/v1/state", params={"valid_at": "2017-06-30"})
                assert state.status_code == 200, state.text
                page = await http.get("/v1/events", params={"limit": 100})
                positions = [e["position"] for e in page.json()["events"]]
                assert positions == list(range(1, 33))
                verified = await http.get("/v1/audit/verify")
                assert verified.status_code == 200, verified.text
                assert verified.json()["ok"] is True
    assert all(body["id"] in seen for body in posted)
    assert "Traceback" not in (tmp_path / "service.log").read_text()
