"""Every curl example of README.md, run as written against ``frontline serve --demo``.

The commands are read from the README's ``sh`` blocks and run by bash with the real curl, in
the README's order, in a folder holding the files they name (``events.ndjson``,
``event-without-id.json``, ``acled.csv``); only ``localhost:8000`` becomes the test server's
address. The key the README tells the reader to add goes in through curl's own configuration
file (``$CURL_HOME/.curlrc``), with ``--fail-with-body``, so an answer of 400 or more fails
the command; a live stream (``curl -N``) is cut after a few seconds, as a reader would.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from bench.servers import ServerProcess, free_port
from service.roles import key_hash, new_key
from tests.conftest import TEMPLATE, with_database
from tests.payloads import event_json

ROOT: Final = Path(__file__).resolve().parents[2]
README: Final = ROOT / "README.md"
ACLED: Final = ROOT / "tests" / "fixtures" / "interop" / "acled.csv"
STREAM_SECONDS: Final = 3
CURL_TIMEOUT: Final = 28
"""curl's exit status when ``--max-time`` ends the transfer (a live stream does not end)."""


@dataclass(frozen=True)
class Example:
    """One shell command of the README, with the line it starts on."""

    line: int
    command: str

    @property
    def streams(self) -> bool:
        """A live stream, which never ends by itself (``curl -N``)."""
        return "/stream" in self.command

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.command.splitlines()[0]}"


def curl_examples(text: str) -> list[Example]:
    """The curl commands of the ``sh`` blocks of ``text``, a command running over several
    lines (a quoted body, a trailing backslash) joined whole, comments left in."""
    examples: list[Example] = []
    in_block = False
    pending: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_block = line.strip() == "```sh"
            pending = []
            continue
        if not in_block:
            continue
        if not pending:
            if not line.startswith("curl "):
                continue
            start = number
        pending.append(line)
        joined = "\n".join(pending)
        if joined.endswith("\\"):
            continue
        try:
            shlex.split(joined, comments=True)
        except ValueError:  # a quote still open: the command goes on
            continue
        examples.append(Example(start, joined))
        pending = []
    return examples


EXAMPLES: Final = curl_examples(README.read_text(encoding="utf-8"))


async def _database(server_url: str, name: str, key: str) -> str:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await admin.close()
    url = with_database(server_url, name)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO api_keys (id, name, role, key_hash) VALUES ($1, $2, $3, $4)",
            uuid.uuid4(),
            "readme-reader",
            "admin",
            key_hash(key),
        )
    finally:
        await conn.close()
    return url


async def _drop(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@dataclass(frozen=True)
class Reader:
    """The README's reader: a served demo, a key in curl's configuration, a work folder."""

    url: str
    folder: Path
    curl_home: Path
    stream_home: Path

    def run(self, example: Example) -> subprocess.CompletedProcess[str]:
        """``example`` run by bash in the work folder against the served demo."""
        command = example.command.replace("localhost:8000", self.url.removeprefix("http://"))
        home = self.stream_home if example.streams else self.curl_home
        return subprocess.run(  # noqa: S603 (bash running the README's own commands)
            ["bash", "-c", command],  # noqa: S607 (bash from the PATH, as a reader runs it)
            cwd=self.folder,
            env={**os.environ, "CURL_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _curlrc(folder: Path, key: str, seconds: int) -> Path:
    folder.mkdir()
    (folder / ".curlrc").write_text(
        f'header = "authorization: Bearer {key}"\nfail-with-body\nmax-time = {seconds}\n'
    )
    return folder


def _files(folder: Path) -> None:
    """The files the README's commands name, as a reader would have them."""
    places = [{"id": f"sy-readme-{i}", "name": f"Readme {i}", "lat": 30 + i} for i in range(4)]
    lines = [json.dumps(event_json(place=place)) for place in places[:3]]
    (folder / "events.ndjson").write_text("\n".join(lines) + "\n")
    without_id = event_json(place=places[3], id=None)
    (folder / "event-without-id.json").write_text(json.dumps(without_id))
    (folder / "acled.csv").write_bytes(ACLED.read_bytes())


@pytest.fixture(scope="module")
def reader(
    server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Reader]:
    """``frontline serve --demo`` on a fresh database (an admin key in it, a head-signing
    key configured), and the folder and curl configuration of a reader who follows the
    README."""
    name = "frontline_readme_" + uuid.uuid4().hex[:12]
    key = new_key()
    database = asyncio.run(_database(server_url, name, key))
    base = tmp_path_factory.mktemp("readme")
    work = base / "work"
    work.mkdir()
    _files(work)
    signing = base / "signing.pem"  # GET /v1/audit/key answers 404 without one
    signing.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    port = free_port()
    service = ServerProcess(
        name="frontline",
        command=[sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--demo"],
        env={
            "DATABASE_URL": database,
            "FRONTLINE_LOG_FORMAT": "json",
            "FRONTLINE_SIGNING_KEY_FILE": str(signing),
        },
        log_path=base / "service.log",
        port=port,
        ready_path="/ready",
    )
    service.start()
    try:
        yield Reader(
            url=f"http://127.0.0.1:{port}",
            folder=work,
            curl_home=_curlrc(base / "curl", key, 60),
            stream_home=_curlrc(base / "stream", key, STREAM_SECONDS),
        )
    finally:
        service.stop()
        asyncio.run(_drop(server_url, name))


#: Top-level fields that hold the data an answer promises: present, they may not be empty.
DATA_LISTS: Final = ("items", "events", "segments", "features", "receipts", "commits", "claims")


def _has_data(answer: Any) -> bool:
    """Whether a JSON answer carries data: every list of :data:`DATA_LISTS` it has is
    non-empty, and a place's ``segment`` is not null."""
    if isinstance(answer, list):
        return bool(answer)
    if not isinstance(answer, dict) or not answer:
        return False
    if "segment" in answer and answer["segment"] is None:
        return False
    return all(answer[name] for name in DATA_LISTS if name in answer)


def _written(command: str, folder: Path) -> Path | None:
    """The file a command's output is redirected to (``> log.ndjson``), if any."""
    found = re.search(r">\s*([\w.-]+)\s*(#.*)?$", command)
    return folder / found.group(1) if found else None


def test_the_readme_has_curl_examples() -> None:
    """The reader below has something to run: the README's curl commands are found (the
    parser misses none that start a line of an ``sh`` block)."""
    text = README.read_text(encoding="utf-8")
    starts = 0
    in_block = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_block = line.strip() == "```sh"
        elif in_block and line.startswith("curl "):
            starts += 1
    assert len(EXAMPLES) == starts >= 30


@pytest.mark.slow
def test_every_curl_example_of_the_readme_answers_with_data(reader: Reader) -> None:
    """Run in order, as a reader would, every curl command of the README succeeds against
    the served demo (no answer of 400 or more; a live stream runs until it is cut), and each
    answer carries data: non-empty lists of places, events, segments, features or receipts,
    a place's segment, a non-empty file where the output is redirected, or the first events
    of a stream."""
    failures: list[str] = []
    for example in EXAMPLES:
        done = reader.run(example)
        out = done.stdout
        if example.streams:
            ok = done.returncode == CURL_TIMEOUT and ("data:" in out or out.startswith("{"))
        else:
            target = _written(example.command, reader.folder)
            if target is not None:
                out = target.read_text() if target.is_file() else ""
            ok = done.returncode == 0 and bool(out.strip())
            if ok and out.lstrip().startswith(("{", "[")) and "\n{" not in out.strip():
                ok = _has_data(json.loads(out))
        if not ok:
            failures.append(f"{example}\n  exit {done.returncode}: {out[:300]}{done.stderr[:200]}")
    assert not failures, "\n".join(failures)
