"""The command line's guards: ``frontline serve`` warns of anonymous reads beyond this machine
and keeps the first admin key of a local database in a file only its owner may read;
``frontline verify --head`` refuses a file nested too deeply instead of a traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
from structlog.testing import capture_logs

from service import cli
from service.roles import key_hash
from service.settings import Settings

EVERY_ADDRESS = "0.0.0.0"  # noqa: S104 (the exposure these tests are about)


@pytest.mark.parametrize(
    ("host", "anonymous", "warned"),
    [
        (EVERY_ADDRESS, "true", True),
        ("::", "true", True),
        ("192.0.2.7", "true", True),
        ("frontline.example", "true", True),
        ("127.0.0.1", "true", False),
        ("127.8.9.10", "true", False),
        ("::1", "true", False),
        ("localhost", "true", False),
        (EVERY_ADDRESS, "false", False),
    ],
)
def test_anonymous_reads_beyond_this_machine_are_warned_about(
    capsys: pytest.CaptureFixture[str], host: str, anonymous: str, warned: bool
) -> None:
    """Listening on an address other machines can reach, with anonymous reads on, gives a
    warning event (``anonymous_reads_exposed``) and a line on stderr saying how to close it;
    loopback addresses, or anonymous reads off, give neither."""
    settings = Settings(host=host, anonymous_reads=anonymous)
    with capture_logs() as logs:
        assert cli.warn_if_exposed(settings) is warned
    events = [line for line in logs if line["event"] == "anonymous_reads_exposed"]
    err = capsys.readouterr().err
    if warned:
        assert events == [
            {"event": "anonymous_reads_exposed", "host": host, "port": 8000, "log_level": "warning"}
        ]
        assert f"WARNING: listening on {host} with anonymous reads on" in err
        assert "FRONTLINE_ANONYMOUS_READS=false" in err
    else:
        assert (events, err) == ([], "")


async def test_the_first_admin_key_is_written_to_a_private_file(
    fresh_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a database without keys, the first admin key is written to
    ``<data>/first-admin-key`` with mode 0600 (even over a file an earlier database left,
    and never through a symbolic link), and the message says where; it is the key the
    database holds. With keys already there, nothing is made or written."""
    data = tmp_path / "data"
    data.mkdir()
    left = data / "first-admin-key"
    left.write_text("an old key\n")
    left.chmod(0o644)
    settings = Settings(database_url=fresh_db, migrate_database_url=fresh_db, data_dir=data)
    await cli._first_admin_key(settings)
    key = left.read_text().strip()
    assert key.startswith("flk_")
    assert stat.S_IMODE(left.stat().st_mode) == 0o600
    err = capsys.readouterr().err
    assert key in err
    assert f"| Saved in {left.absolute()}" in err
    assert "(readable only by you" in err
    assert_boxed(err, key)
    conn = await asyncpg.connect(fresh_db)
    try:
        stored = await conn.fetchval("SELECT role FROM api_keys WHERE key_hash = $1", key_hash(key))
    finally:
        await conn.close()
    assert stored == "admin"
    await cli._first_admin_key(settings)
    assert left.read_text().strip() == key
    assert capsys.readouterr().err == ""


async def test_the_key_is_never_written_through_a_symbolic_link(
    fresh_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A symbolic link planted at the key file's place is not followed: the key is shown
    once on stderr with the reason it could not be written, and the link's target is left
    as it was."""
    data = tmp_path / "data"
    data.mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("untouched\n")
    (data / "first-admin-key").symlink_to(target)
    settings = Settings(database_url=fresh_db, migrate_database_url=fresh_db, data_dir=data)
    await cli._first_admin_key(settings)
    err = capsys.readouterr().err
    assert "flk_" in err
    assert "could not be written" in err
    assert_boxed(err, next(word for word in err.split() if word.startswith("flk_")))
    assert target.read_text() == "untouched\n"


def assert_boxed(err: str, key: str) -> None:
    """The key's message is a box of plain lines (not JSON), the key alone on its line."""
    lines = err.strip("\n").splitlines()
    assert lines[0] == lines[-1]
    assert set(lines[0]) == {"+", "-"}
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines[1:-1])
    assert {len(line) for line in lines} == {len(lines[0])}
    assert any(line.split() == ["|", key, "|"] for line in lines)


def test_the_key_box_is_plain_text_framed_on_every_line() -> None:
    """The box around the first admin key frames every line at the longest line's width,
    with a blank line before and after, so it stands out between JSON log lines."""
    text = cli.boxed(["short", "", "a longer line"])
    assert text == (
        "\n+---------------+\n"
        "| short         |\n"
        "|               |\n"
        "| a longer line |\n"
        "+---------------+\n\n"
    )


def test_serve_warns_when_exposed(fresh_db: str) -> None:
    """`frontline serve --host 0.0.0.0` with anonymous reads on logs the warning and writes
    it on stderr before it serves."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "FRONTLINE_"))}
    env.update(DATABASE_URL=fresh_db, FRONTLINE_ANONYMOUS_READS="true", FRONTLINE_LOG_FORMAT="json")
    server = subprocess.Popen(  # noqa: S603 (our own command)
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--host",
            EVERY_ADDRESS,
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stderr.readline()
            if not line:
                break
            lines.append(line)
            if '"serving"' in line:
                break
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=60)
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert "anonymous_reads_exposed" in {line.get("event") for line in logged}, lines
    assert any(line.startswith("WARNING: listening on 0.0.0.0") for line in lines), lines


def test_verify_refuses_a_saved_head_nested_too_deeply(fresh_db: str, tmp_path: Path) -> None:
    """`frontline verify --head FILE` with a file nested thousands deep (the decoder would
    recurse until the stack ran out: a traceback) exits 2 saying what is wrong."""
    head = tmp_path / "head.json"
    head.write_text('{"position":1,"x":' + "[" * 5000 + "]" * 5000 + "}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "FRONTLINE_"))}
    env.update(DATABASE_URL=fresh_db, FRONTLINE_LOG_FORMAT="json")
    done = subprocess.run(  # noqa: S603 (our own command)
        [sys.executable, "-m", "service.cli", "verify", "--head", str(head)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "nested more than 32 deep" in done.stderr
    assert "Traceback" not in done.stderr
