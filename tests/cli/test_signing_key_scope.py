"""Which commands need the head-signing key: ``verify`` reads it, the others never do."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import _count, _env, _run
from tests.payloads import event_json


async def test_an_unreadable_signing_key_stops_verify_alone(fresh_db: str, tmp_path: Path) -> None:
    """A FRONTLINE_SIGNING_KEY_FILE that cannot be read stops `frontline verify` with a
    message naming the setting (exit 1), while `import`, `export` and `rebuild`, which sign
    nothing, work as without it."""
    events = tmp_path / "events.ndjson"
    events.write_text(json.dumps(event_json()) + "\n")
    env = _env(DATABASE_URL=fresh_db, FRONTLINE_SIGNING_KEY_FILE=str(tmp_path / "missing.pem"))
    imported = _run(["import", str(events)], env)
    assert imported.returncode == 0, imported.stderr
    exported = _run(["export"], env)
    assert exported.returncode == 0, exported.stderr
    assert len(exported.stdout.splitlines()) == 1
    rebuilt = _run(["rebuild"], env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    verified = _run(["verify"], env)
    assert verified.returncode == 1
    assert "FRONTLINE_SIGNING_KEY_FILE" in verified.stderr
    assert await _count(fresh_db) == 1
