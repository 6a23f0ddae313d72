"""``frontline import``, ``export`` and ``verify`` with ``--url``: the command line against a
served instance through the client, never opening a database of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import msgspec

from frontline.client import Client
from tests.client.conftest import Served
from tests.payloads import at_place, event_json

FRONTLINE = [sys.executable, "-m", "service.cli"]
ROOT = Path(__file__).parents[2]


def _run(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """The command in ``cwd`` with no database settings at all (no DATABASE_URL, no
    FRONTLINE_*): a local run would start an embedded PostgreSQL in ``cwd/data``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "FRONTLINE_"))}
    env.update(extra, FRONTLINE_LOG_FORMAT="json", PYTHONPATH=str(ROOT))
    return subprocess.run(  # noqa: S603 (our own command, fixed arguments)
        [*FRONTLINE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_import_with_url_sends_the_file_and_a_rerun_with_the_same_key_stores_nothing(
    served: Served, tmp_path: Path
) -> None:
    """An NDJSON file without ids imported with --url and --idempotency-key: the result on
    stdout, exit 2 for its one bad line; the same command again stores nothing new; no data
    folder was made (no local database)."""
    lines = [json.dumps(at_place(f"sy-cli-{i}", id=None)) for i in range(5)]
    lines.insert(2, '{"type": "teleport"}')
    (tmp_path / "events.ndjson").write_text("\n".join(lines) + "\n")
    remote = ["--url", served.url, "--key", served.key, "--idempotency-key", "cli-run"]
    first = _run(["import", "events.ndjson", *remote], tmp_path)
    assert first.returncode == 2, first.stderr
    result = json.loads(first.stdout)
    assert (result["accepted"], result["rejected"]) == (5, 1)
    assert result["errors"][0]["line"] == 3
    again = _run(["import", "events.ndjson", *remote], tmp_path)
    assert json.loads(again.stdout)["duplicate"] == 5
    assert not (tmp_path / "data").exists()


def test_import_of_a_source_file_with_url_and_the_environment(
    served: Served, tmp_path: Path
) -> None:
    """``--format acled`` with FRONTLINE_URL and FRONTLINE_KEY from the environment."""
    acled = ROOT / "tests" / "fixtures" / "interop" / "acled.csv"
    done = _run(
        ["import", "--format", "acled", str(acled)],
        tmp_path,
        FRONTLINE_URL=served.url,
        FRONTLINE_KEY=served.key,
    )
    assert done.returncode in (0, 2), done.stderr
    assert json.loads(done.stdout)["accepted"] > 0
    assert not (tmp_path / "data").exists()


def test_export_with_url_writes_the_servers_bytes(served: Served, tmp_path: Path) -> None:
    """``export --url --out`` writes GET /v1/export's bytes and names position and ETag;
    ``--front`` the front's CSV."""
    with Client(served.url, served.key) as frontline:
        frontline.append_batch([event_json(id=None), at_place("sy-raqqa", id=None)])
    remote = ["--url", served.url, "--key", served.key]
    done = _run(["export", "--format", "csv", "--out", "log.csv", *remote], tmp_path)
    assert done.returncode == 0, done.stderr
    raw = httpx.get(
        f"{served.url}/v1/export?format=csv", headers={"authorization": f"Bearer {served.key}"}
    )
    assert (tmp_path / "log.csv").read_bytes() == raw.content
    assert f"position 2: ETag {raw.headers['etag']}" in done.stderr
    front = _run(["export", "--front", "--valid-at", "2017-06-05", *remote], tmp_path)
    assert front.returncode == 0, front.stderr
    assert front.stdout.startswith("place_id,")


def test_verify_with_url_and_a_saved_head(served: Served, tmp_path: Path) -> None:
    """``verify --url`` prints the server's report (exit 0); with a saved head the log holds,
    ``holds``; with a head whose hash was altered, exit 1 and ``broken``."""
    with Client(served.url, served.key) as frontline:
        frontline.append(event_json(id=None))
        head = frontline.head()
    remote = ["--url", served.url, "--key", served.key]
    done = _run(["verify", *remote], tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True
    (tmp_path / "head.json").write_bytes(msgspec.json.encode(head))
    held = _run(["verify", "--head", "head.json", *remote], tmp_path)
    assert json.loads(held.stdout)["saved_head"] == "holds"
    forged = msgspec.structs.replace(head, hash="0" * 64)
    (tmp_path / "forged.json").write_bytes(msgspec.json.encode(forged))
    broken = _run(["verify", "--head", "forged.json", *remote], tmp_path)
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["saved_head"] == "broken"
    assert not (tmp_path / "data").exists()


def test_a_wrong_key_or_an_unreachable_server_is_one_line_and_exit_1(
    served: Served, tmp_path: Path
) -> None:
    """A key the server does not know: exit 1 and the 401 on stderr; a server that is not
    there: exit 1 naming the URL."""
    denied = _run(["verify", "--url", served.url, "--key", "not-a-key"], tmp_path)
    assert denied.returncode == 1
    assert "frontline verify" in denied.stderr
    assert "401" in denied.stderr
    gone = _run(["verify", "--url", "http://127.0.0.1:9", "--key", "k"], tmp_path)
    assert gone.returncode == 1
    assert "http://127.0.0.1:9" in gone.stderr
