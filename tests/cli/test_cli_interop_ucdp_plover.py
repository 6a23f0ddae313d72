"""`frontline import --format ucdp-ged|plover FILE`: the same imports as POST /v1/imports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import pytest

from tests.cli.test_cli import _count, _env, _run

FIXTURES: Final = Path(__file__).resolve().parents[1] / "fixtures" / "interop"


@pytest.mark.parametrize(
    ("fmt", "name", "summary", "events"),
    [
        ("ucdp-ged", "ucdp-ged.csv", "imported 16, duplicates 0, rejected 3, flagged 2", 16),
        ("plover", "plover.jsonl", "imported 10, duplicates 0, rejected 4, flagged 1", 10),
    ],
)
async def test_import_summarises_flags_and_exits_2_on_rejected_rows(
    fresh_db: str, fmt: str, name: str, summary: str, events: int
) -> None:
    """The result on stdout with the flagged rows' lines and ids, the summary on stderr,
    exit 2 for the refused rows; a second run stores nothing new."""
    env = _env(DATABASE_URL=fresh_db)
    first = _run(["import", "--format", fmt, str(FIXTURES / name)], env)
    assert first.returncode == 2, first.stderr
    assert summary in first.stderr
    flags = [(f["line"], f["source_id"]) for f in json.loads(first.stdout)["flags"]]
    assert flags == (
        [(7, "244703"), (14, "244710")] if fmt == "ucdp-ged" else [(3, "SF-20170605-0003")]
    )
    again = _run(["import", "--format", fmt, str(FIXTURES / name)], env)
    assert f"imported 0, duplicates {events}," in again.stderr
    assert await _count(fresh_db) == events


async def test_a_plover_file_no_parser_reads_exits_1_with_a_message(
    fresh_db: str, tmp_path: Path
) -> None:
    """An array nested 100,000 levels deep is unreadable as a whole, as POST /v1/imports
    answers 422: exit 1 with one line saying why, no traceback, nothing stored. In JSON
    lines the same record is one rejected row (exit 2)."""
    env = _env(DATABASE_URL=fresh_db)
    deep = '{"id": ' + "[" * 100_000 + "]" * 100_000 + "}"
    array = tmp_path / "deep.json"
    array.write_text(f"[{deep}]")
    done = _run(["import", "--format", "plover", str(array)], env)
    assert done.returncode == 1, done.stderr
    assert "not a readable plover file" in done.stderr
    assert "nested too deeply" in done.stderr
    assert "Traceback" not in done.stderr
    lines = tmp_path / "deep.jsonl"
    lines.write_text(deep + "\n")
    done = _run(["import", "--format", "plover", str(lines)], env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads(done.stdout)["errors"][0]["line"] == 1
    assert await _count(fresh_db) == 0
