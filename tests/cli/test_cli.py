"""The ``frontline`` command, run as a user would: a subprocess against a real database."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg
import pytest

from service.domain.audit import Head, SigningKey
from service.domain.policy import SERVED
from service.projections.queries import SQL
from service.store.db import EMBEDDED_LOGIN, embedded_running, stop_embedded
from tests.payloads import at_place, event_json

FRONTLINE = [sys.executable, "-m", "service.cli"]


def _superuser_url(data: Path) -> str:
    """The superuser's URL of the embedded server running in ``data`` (its socket folder and
    port, read from postmaster.pid as PostgreSQL writes it)."""
    lines = (data / "pg" / "postmaster.pid").read_text().splitlines()
    return f"postgresql://postgres@/postgres?host={lines[4]}&port={lines[3]}"


async def _service_logins(url: str) -> list[tuple[str, bool]]:
    """The roles the service's sessions logged in as (application_name 'frontline'), and
    whether each is a superuser."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT a.usename, r.rolsuper FROM pg_stat_activity AS a "
            "JOIN pg_roles AS r ON r.rolname = a.usename WHERE a.application_name = 'frontline'"
        )
        return [(r["usename"], r["rolsuper"]) for r in rows]
    finally:
        await conn.close()


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own command, fixed arguments)
        [*FRONTLINE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "FRONTLINE_"))}
    env.update(extra, FRONTLINE_LOG_FORMAT="json")
    return env


async def _count(url: str, table: str = "events") -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(f"SELECT count(*) FROM {table}")
        return count
    finally:
        await conn.close()


def test_migrate_then_refuse_to_drop_events(empty_db: str, tmp_path: Path) -> None:
    """`frontline migrate` builds the schema; a downgrade that would drop events refuses."""
    env = _env(DATABASE_URL=empty_db)
    assert _run(["migrate"], env).returncode == 0
    events = tmp_path / "events.ndjson"
    events.write_text(json.dumps(event_json()) + "\n")
    assert _run(["import", str(events)], env).returncode == 0
    refused = _run(["migrate", "--downgrade", "base"], env)
    assert refused.returncode == 1
    assert "refusing to downgrade" in refused.stderr
    assert "1 events" in refused.stderr


async def test_import_reports_counts_and_bad_lines(fresh_db: str, tmp_path: Path) -> None:
    """`frontline import` stores the good lines, lists the bad ones, exits 2 when any is bad."""
    events = tmp_path / "events.ndjson"
    good = [at_place(f"sy-place-{i}") for i in range(5)]
    lines = [json.dumps(e) for e in good[:3]] + ["{oops"] + [json.dumps(e) for e in good[3:]]
    events.write_text("\n".join(lines) + "\n")
    env = _env(DATABASE_URL=fresh_db)
    first = _run(["import", str(events)], env)
    assert first.returncode == 2, first.stderr
    result = json.loads(first.stdout)
    assert (result["accepted"], result["rejected"]) == (5, 1)
    assert result["errors"][0]["line"] == 4
    assert "imported 5, duplicates 0, rejected 1" in first.stderr
    again = json.loads(_run(["import", str(events)], env).stdout)
    assert (again["accepted"], again["duplicate"]) == (0, 5)
    assert await _count(fresh_db) == 5


async def test_verify_with_a_signed_saved_head(fresh_db: str, tmp_path: Path) -> None:
    """`frontline signing-key` writes a key once; `frontline verify --head` checks a head
    saved and signed earlier, passes while the log holds it, and refuses a forged one;
    ``--projections full`` refolds every place; altering a stored event makes it exit 1
    naming the position."""
    key = tmp_path / "head.pem"
    made = _run(["signing-key", str(key)], _env())
    assert made.returncode == 0, made.stderr
    assert "public key (base64)" in made.stdout
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert _run(["signing-key", str(key)], _env()).returncode == 1  # never overwritten
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join(json.dumps(at_place(f"sy-place-{i}")) for i in range(4)) + "\n")
    env = _env(DATABASE_URL=fresh_db, FRONTLINE_SIGNING_KEY_FILE=str(key))
    assert _run(["import", str(events)], env).returncode == 0
    conn = await asyncpg.connect(fresh_db)
    try:
        row = await conn.fetchrow(
            "SELECT h.position, h.hash, e.recorded_at FROM log_head h "
            "JOIN events e ON e.position = h.position"
        )
    finally:
        await conn.close()
    assert row is not None
    signing = SigningKey.from_pem(key.read_bytes())
    head = Head(
        position=row["position"], hash=bytes(row["hash"]).hex(), recorded_at=row["recorded_at"]
    )
    saved = {"position": head.position, "hash": head.hash,
             "recorded_at": row["recorded_at"].isoformat(), "algorithm": "Ed25519",
             "signature": signing.sign(head), "key_id": None}  # fmt: skip
    head_file = tmp_path / "head.json"
    head_file.write_text(json.dumps(saved))
    ok = _run(["verify", "--head", str(head_file)], env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["saved_head"] == "holds"
    full = _run(["verify", "--projections", "full"], env)
    assert full.returncode == 0, full.stdout + full.stderr
    projections = json.loads(full.stdout)["projections"]
    assert (projections["mode"], projections["ok"], projections["places_checked"]) == (
        "full",
        True,
        4,
    )
    assert _run(["verify", "--projections", "most"], env).returncode == 2
    head_file.write_text(json.dumps({**saved, "position": head.position - 1}))
    forged = _run(["verify", "--head", str(head_file)], env)
    assert forged.returncode == 1
    assert "signature is not valid" in json.loads(forged.stdout)["failure"]["reason"]
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
        await conn.execute("UPDATE events SET payload = payload || ' ' WHERE position = 2")
        await conn.execute("ALTER TABLE events ENABLE TRIGGER USER")
    finally:
        await conn.close()
    altered = _run(["verify"], env)
    assert altered.returncode == 1
    assert json.loads(altered.stdout)["failure"]["position"] == 2
    bad = _run(["verify", "--from", "0"], env)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    assert "from" in bad.stderr


def test_export_writes_what_the_api_serves(fresh_db: str, tmp_path: Path) -> None:
    """`frontline export` writes the log as NDJSON or CSV, and the front as CSV, with the
    same ETag the API gives; a bad --known-at is a one-line error."""
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join(json.dumps(at_place(f"sy-place-{i}")) for i in range(3)) + "\n")
    env = _env(DATABASE_URL=fresh_db)
    assert _run(["import", str(events)], env).returncode == 0
    out = tmp_path / "log.ndjson"
    done = _run(["export", "--out", str(out)], env)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["position"] for line in out.read_text().splitlines()] == [1, 2, 3]
    assert "log up to position 3: ETag" in done.stderr
    again = _run(["export", "--known-at", "position:3"], env)
    assert again.stdout.encode() == out.read_bytes()
    as_csv = _run(["export", "--format", "csv"], env)
    assert as_csv.stdout.splitlines()[0].startswith("position,id,place")
    front = _run(["export", "--front", "--valid-at", "2017-06-05"], env)
    assert front.returncode == 0, front.stderr
    assert front.stdout.splitlines()[0].startswith("place_id,name,lat,lon")
    bad = _run(["export", "--known-at", "soon"], env)
    assert bad.returncode == 1
    assert "known_at" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_keys_are_shown_once_listed_without_secrets_and_revoked(fresh_db: str) -> None:
    """keys create prints the key once on stdout and never in the logs, refuses a taken name,
    keys list shows no secret, revoke marks it revoked once, and an unknown role exits 2."""
    env = _env(DATABASE_URL=fresh_db)
    made = _run(["keys", "create", "--role", "ingest", "--name", "scraper"], env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("flk_")
    assert key not in made.stderr  # the log lines on stderr never hold it
    again = _run(["keys", "create", "--role", "read", "--name", "scraper"], env)
    assert again.returncode == 1
    assert "exists" in again.stderr
    listed = _run(["keys", "list"], env)
    assert "scraper\tingest" in listed.stdout
    assert key not in listed.stdout
    assert _run(["keys", "revoke", "scraper"], env).returncode == 0
    assert "revoked" in _run(["keys", "list"], env).stdout
    assert _run(["keys", "revoke", "scraper"], env).returncode == 1
    bad = _run(["keys", "create", "--role", "god", "--name", "x"], env)
    assert bad.returncode == 2  # argparse refuses the role


def test_import_of_a_missing_file_says_so(fresh_db: str) -> None:
    """A file that does not exist: exit 1 and a one-line message, no traceback."""
    done = _run(["import", "/nonexistent/events.ndjson"], _env(DATABASE_URL=fresh_db))
    assert done.returncode == 1
    assert "no such file" in done.stderr
    assert "Traceback" not in done.stderr


async def test_demo_loads_the_seed_once(fresh_db: str) -> None:
    """`frontline demo` loads the seed; a second load stores nothing new."""
    env = _env(DATABASE_URL=fresh_db)
    assert _run(["demo"], env).returncode == 0
    seeded = await _count(fresh_db)
    assert seeded >= 20
    assert _run(["demo"], env).returncode == 0
    assert await _count(fresh_db) == seeded


async def test_demo_loads_both_registries_and_frontline_sources_loads_any_file(
    fresh_db: str, tmp_path: Path
) -> None:
    """`frontline demo` registers the default side and source registries after its 36
    reports (50 events in all); `frontline sources` then stores nothing new, loads another
    file, and refuses a bad one with exit 2 naming the field, writing nothing."""
    env = _env(DATABASE_URL=fresh_db)
    assert _run(["demo"], env).returncode == 0
    assert await _count(fresh_db) == 50
    again = _run(["sources"], env)
    assert again.returncode == 0, again.stderr
    receipts = json.loads(again.stdout)["receipts"]
    assert [r["duplicate"] for r in receipts] == [True, True, True]
    entry = tmp_path / "reuters.json"
    entry.write_text('{"source": "Reuters", "reliability": "B", "aliases": ["Reuters UK"]}')
    done = _run(["sources", str(entry)], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["receipts"][0]["place"] == "source:reuters"
    bad = tmp_path / "bad.json"
    bad.write_text('{"sources": [{"source": "AFP", "reliability": "Q"}]}')
    refused = _run(["sources", str(bad)], env)
    assert refused.returncode == 2
    assert "frontline sources: refused (sources[0].reliability)" in refused.stderr
    assert await _count(fresh_db) == 51


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_on_the_embedded_database(tmp_path: Path, stop: signal.Signals) -> None:
    """Without DATABASE_URL, `serve` starts PostgreSQL in the data folder, migrates, serves,
    loads the demo when asked, and once it listens says where the map, the API document and
    the admin key file are; SIGINT and SIGTERM alike stop it cleanly (exit 0), a live stream
    left open included, and it stops the database it started.

    Regression (issue 13): SIGTERM (docker stop, systemd, every supervisor) killed it with
    exit -15 and left the embedded PostgreSQL running; only SIGINT stopped it. And the
    service's sessions logged in as the superuser ``postgres``: they log in as the login
    role made on first start, no superuser."""
    port = _free_port()
    data = tmp_path / "data"
    server = subprocess.Popen(  # noqa: S603 (our own command)
        [*FRONTLINE, "serve", "--port", str(port), "--data-dir", str(data), "--demo"],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stream: socket.socket | None = None
    try:
        status, body = 0, dict[str, object]()
        for _ in range(300):
            try:
                status, body = _get(f"http://127.0.0.1:{port}/ready")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert status == 200, body
        status, page = _get(f"http://127.0.0.1:{port}/v1/events?limit=5")
        assert status == 200
        assert len(page["events"]) == 5  # type: ignore[arg-type]
        for path in ("/", "/schema/swagger", "/schema/openapi.json"):  # what the note names
            page_url = f"http://127.0.0.1:{port}{path}"
            with urllib.request.urlopen(page_url, timeout=5) as answer:
                assert answer.status == 200, path
        assert embedded_running(data)
        logins = asyncio.run(_service_logins(_superuser_url(data)))
        assert logins == [(EMBEDDED_LOGIN, False)]
        stream = socket.create_connection(("127.0.0.1", port), timeout=10)
        stream.sendall(b"GET /v1/events/stream HTTP/1.1\r\nhost: x\r\n\r\n")
        assert stream.recv(12) == b"HTTP/1.1 200"
    finally:
        stopping = time.monotonic()
        server.send_signal(stop)
        try:
            _, stderr = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # leave nothing running behind a failure
            server.kill()
            server.communicate()
            stop_embedded(data)
            raise
        finally:
            if stream is not None:
                stream.close()
    stopped_here = not embedded_running(data)
    if not stopped_here:
        stop_embedded(data)  # the failure below must not leave it running either
    assert server.returncode == 0, stderr
    assert time.monotonic() - stopping < 20, "the open stream held the server up"
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    events = {line.get("event") for line in logged}
    assert {"sys_startup", "sys_shutdown", "embedded_postgres_stopped"} <= events
    assert stopped_here
    # Once it listens, it says last, in plain lines: the map, the API document, the key file.
    note = stderr.index("Frontline is serving.")
    assert stderr.index("An admin API key for this local database") < note
    assert stderr.index('"sys_startup"') < note
    url = f"http://127.0.0.1:{port}"
    lines = stderr[note:].splitlines()
    assert lines[1].split() == ["The", "map:", f"{url}/"]
    assert lines[2].split()[:4] == ["The", "API", "document:", f"{url}/schema/swagger"]
    assert lines[3].split() == ["The", "admin", "API", "key:", "in", str(data / "first-admin-key")]


async def test_import_rejects_a_line_with_a_lone_surrogate_naming_the_field(
    fresh_db: str, tmp_path: Path
) -> None:
    """A line whose ``actor`` holds "\\ud800" (JSON can escape it, UTF-8 cannot hold it) is a
    rejected line naming ``actor``, not a crash; the other lines import."""
    events = tmp_path / "events.ndjson"
    good = [json.dumps(at_place(f"sy-place-{i}")) for i in range(2)]
    bad = json.dumps(at_place("sy-place-9", actor="SURROGATE")).replace("SURROGATE", "\\ud800")
    events.write_text("\n".join([good[0], bad, good[1]]) + "\n")
    done = _run(["import", str(events)], _env(DATABASE_URL=fresh_db))
    assert done.returncode == 2, done.stderr
    result = json.loads(done.stdout)
    assert (result["accepted"], result["rejected"]) == (2, 1)
    assert [(e["line"], e["field"]) for e in result["errors"]] == [(2, "actor")]
    assert "surrogate" in result["errors"][0]["reason"]
    assert await _count(fresh_db) == 2


async def _rebuild_running(url: str) -> bool:
    """Whether a session holds the rebuild's lock."""
    conn = await asyncpg.connect(url)
    try:
        return bool(await conn.fetchval(SQL.read_rebuild_running))
    finally:
        await conn.close()


async def _projection(url: str) -> tuple[str, int]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("SELECT policy, position FROM projection_state")
        assert row is not None
        return row["policy"], row["position"]
    finally:
        await conn.close()


async def test_migrate_says_stale_projections_need_a_rebuild_and_rebuild_brings_them(
    fresh_db: str, tmp_path: Path
) -> None:
    """`frontline migrate` on a database whose projection holds an older policy's rows
    says, in words, that they are stale, that `frontline serve` rebuilds them at start-up
    while serving and that `frontline rebuild` does it now, and leaves them; `frontline
    rebuild` then brings them to the served policy up to the head and says what it did."""
    env = _env(DATABASE_URL=fresh_db)
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join(json.dumps(at_place(f"sy-p{i}")) for i in range(3)) + "\n")
    assert _run(["import", str(events)], env).returncode == 0
    await _make_stale(fresh_db)
    migrated = _run(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert "rows of credibility-v1" in migrated.stderr
    assert f"this code serves {SERVED.name}" in migrated.stderr
    assert "stale and need a rebuild" in migrated.stderr
    assert "`frontline serve`" in migrated.stderr
    assert "`frontline rebuild`" in migrated.stderr
    assert await _projection(fresh_db) == ("credibility-v1", 3)

    rebuilt = _run(["rebuild"], env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"rebuilt the projections under {SERVED.name}" in rebuilt.stderr
    assert "up to position 3" in rebuilt.stderr
    assert await _projection(fresh_db) == (SERVED.name, 3)
    assert await _count(fresh_db, "segments") == 3
    assert "stale" not in _run(["migrate"], env).stderr


async def _make_stale(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE projection_state SET policy = 'credibility-v1'")
    finally:
        await conn.close()


def test_serve_rebuilds_stale_projections_at_start_while_serving(
    fresh_db: str, tmp_path: Path
) -> None:
    """`frontline serve` (what `make run` runs) on a database whose projection holds
    another policy's rows serves at once and rebuilds them in the background: /ready turns
    200 once the rows of the served policy are swapped in, up to the head."""
    env = _env(DATABASE_URL=fresh_db)
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join(json.dumps(at_place(f"sy-q{i}")) for i in range(4)) + "\n")
    assert _run(["import", str(events)], env).returncode == 0
    asyncio.run(_make_stale(fresh_db))
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 (our own command)
        [*FRONTLINE, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        status = 0
        for _ in range(300):
            try:
                status, _body = _get(f"http://127.0.0.1:{port}/ready")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert status == 200
        # /ready turns 200 at the swap; the rebuild then stops its workers and lets go of its
        # lock: stopped before that, it would be cancelled (and say so) after its swap.
        for _ in range(300):
            if not asyncio.run(_rebuild_running(fresh_db)):
                break
            time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=60)
    assert asyncio.run(_projection(fresh_db)) == (SERVED.name, 4)
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    events_logged = [line.get("event") for line in logged]
    assert "projections_stale_rebuilding" in events_logged
    assert "projections_rebuilt" in events_logged


async def test_merge_and_undo_a_merge(fresh_db: str, tmp_path: Path) -> None:
    """`frontline merge PLACE MERGED` appends a place_merged event in the merged place's
    stream; a second merge of it is refused (exit 2, naming the field); `--undo` retracts
    it, and a second undo is refused."""
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join(json.dumps(at_place(p)) for p in ("sy-a", "sy-b")) + "\n")
    env = _env(DATABASE_URL=fresh_db)
    assert _run(["import", str(events)], env).returncode == 0
    done = _run(["merge", "sy-a", "sy-b", "--notes", "one town"], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["receipts"][0]["place"] == "place:sy-b"
    again = _run(["merge", "sy-a", "sy-b"], env)
    assert again.returncode == 2
    assert "refused (merged)" in again.stderr
    assert _run(["merge", "sy-a", "sy-b", "--undo"], env).returncode == 0
    assert _run(["merge", "sy-a", "sy-b", "--undo"], env).returncode == 2
    assert await _count(fresh_db) == 4
