"""`frontline import --format acled|ucdp-ged|plover|maverick FILE`: the same imports as POST
/v1/imports, from a shell."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import uuid
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.cli.test_cli import FRONTLINE, _count, _env, _run
from tests.conftest import TEMPLATE, _admin, with_database
from tests.payloads import at_place

FIXTURES: Final = Path(__file__).resolve().parents[1] / "fixtures" / "interop"
FIXTURE: Final = FIXTURES / "acled.csv"


async def test_acled_import_summarises_and_exits_2_on_rejected_rows(fresh_db: str) -> None:
    """The result as JSON on stdout (rejected rows with line and ACLED id), the summary on
    stderr, exit 2 because two rows were refused; a second run stores nothing new."""
    env = _env(DATABASE_URL=fresh_db)
    first = _run(["import", "--format", "acled", str(FIXTURE)], env)
    assert first.returncode == 2, first.stderr
    result = json.loads(first.stdout)
    assert (result["accepted"], result["duplicate"], result["rejected"]) == (11, 0, 2)
    assert [(e["line"], e["source_id"]) for e in result["errors"]] == [
        (8, "SYR10005"),
        (13, "SYR10009"),
    ]
    assert "imported 11, duplicates 0, rejected 2, flagged 0" in first.stderr
    again = _run(["import", "--format", "acled", str(FIXTURE)], env)
    assert "imported 0, duplicates 11, rejected 2, flagged 0" in again.stderr
    assert await _count(fresh_db) == 11


async def test_an_import_names_the_labels_it_left_unmapped_until_they_are_registered(
    fresh_db: str,
) -> None:
    """Into a log with no side registry every ACLED actor label is unmapped: the summary
    names each with its events, as the JSON result lists them. Once ``frontline sides``
    has loaded the default registry (which aliases every label the fixture uses), the same
    import names none."""
    env = _env(DATABASE_URL=fresh_db)
    first = _run(["import", "--format", "acled", str(FIXTURE)], env)
    result = json.loads(first.stdout)
    listed = {u["side"]: u["events"] for u in result["unmapped_sides"]}
    assert result["unmapped"] == len(listed) > 0
    assert "military-forces-of-syria-2000" in listed
    assert f"unmapped sides {result['unmapped']}: " in first.stderr
    assert f"military-forces-of-syria-2000 ({listed['military-forces-of-syria-2000']})" in (
        first.stderr
    )
    assert _run(["sides"], env).returncode == 0
    again = _run(["import", "--format", "acled", str(FIXTURE)], env)
    assert json.loads(again.stdout)["unmapped"] == 0
    assert "unmapped sides" not in again.stderr


async def test_an_unreadable_file_exits_1_and_stores_nothing(fresh_db: str, tmp_path: Path) -> None:
    """A file that is not an ACLED export is refused whole, saying why."""
    bad = tmp_path / "not-acled.csv"
    bad.write_text("id,date\n1,2017-06-03\n")
    done = _run(["import", "--format", "acled", str(bad)], _env(DATABASE_URL=fresh_db))
    assert done.returncode == 1
    assert "event_id_cnty" in done.stderr
    assert await _count(fresh_db) == 0


def test_an_unknown_format_is_refused_by_the_parser(fresh_db: str) -> None:
    """``--format`` lists the formats there are."""
    done = _run(["import", "--format", "gdelt", str(FIXTURE)], _env(DATABASE_URL=fresh_db))
    assert done.returncode == 2
    assert "acled" in done.stderr


def _on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``frontline ARGS`` with stderr on a pseudo-terminal: its exit status and what the
    terminal showed."""
    master, terminal = pty.openpty()
    try:
        done = subprocess.run(  # noqa: S603 (our own command, fixed arguments)
            [*FRONTLINE, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=120,
            check=False,
        )
        os.close(terminal)
        seen = b""
        with contextlib.suppress(OSError):  # EIO once the terminal is drained
            while chunk := os.read(master, 65536):
                seen += chunk
    finally:
        os.close(master)
    return done.returncode, seen.decode()


@pytest.mark.parametrize(
    ("fmt", "name", "summary"),
    [
        ("acled", "acled.csv", "imported 11, duplicates 0, rejected 2, flagged 0"),
        # Rows whose quoted cells span lines: 12 records on 15 lines (the bar once stopped at
        # 14 of 15 lines, 93.3 %, counting the line where the last row starts).
        ("ucdp-ged", "ucdp-ged.csv", "imported 16, duplicates 0, rejected 3, flagged 3"),
    ],
)
def test_a_terminal_gets_a_progress_bar(fresh_db: str, fmt: str, name: str, summary: str) -> None:
    """With stderr on a terminal, the import draws its bar, reaching 100 % (every record of
    the file, multi-line ones too) before the summary."""
    code, text = _on_a_terminal(
        ["import", "--format", fmt, str(FIXTURES / name)], _env(DATABASE_URL=fresh_db)
    )
    assert code == 2
    assert f"importing {name}: " in text
    assert "100%|" in text
    assert text.index("100%|") < text.index(summary)


def test_an_ndjson_import_and_an_export_reach_100_percent(fresh_db: str, tmp_path: Path) -> None:
    """The NDJSON import's bar (bytes of the file) and the export's (events of the log, the
    CSV header not counted as one) both end at 100 %, and say what they count."""
    env = _env(DATABASE_URL=fresh_db)
    events = tmp_path / "events.ndjson"
    events.write_text("".join(json.dumps(at_place(f"sy-bar-{i}")) + "\n" for i in range(5)))
    code, text = _on_a_terminal(["import", str(events)], env)
    assert code == 0, text
    assert "importing events.ndjson: 100%|" in text
    out = tmp_path / "log.csv"
    code, text = _on_a_terminal(["export", "--format", "csv", "--out", str(out)], env)
    assert code == 0, text
    assert "exporting 5 events: 100%|" in text
    assert " 5/5 " in text


async def _events(url: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, place_id, payload FROM events ORDER BY id")
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


async def test_the_acled_export_imported_into_a_fresh_database_gives_the_same_events(
    fresh_db: str, server_url: str, tmp_path: Path
) -> None:
    """Import the fixture, `export --format acled`, import that file into another fresh
    database: the same events (ids, places, content), none refused; into the first database
    again: all duplicates."""
    env = _env(DATABASE_URL=fresh_db)
    assert _run(["import", "--format", "acled", str(FIXTURE)], env).returncode == 2
    exported = tmp_path / "export.acled.csv"
    done = _run(["export", "--format", "acled", "--out", str(exported)], env)
    assert done.returncode == 0, done.stderr
    other = with_database(server_url, "frontline_t_" + uuid.uuid4().hex[:12])
    name = urlsplit(other).path.lstrip("/")
    await _admin(server_url, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    try:
        again = _run(["import", "--format", "acled", str(exported)], _env(DATABASE_URL=other))
        assert again.returncode == 0, again.stderr
        assert "imported 11, duplicates 0, rejected 0" in again.stderr
        assert await _events(other) == await _events(fresh_db)
    finally:
        await _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    same = _run(["import", "--format", "acled", str(exported)], env)
    assert "imported 0, duplicates 11, rejected 0" in same.stderr


@pytest.mark.parametrize(
    ("fmt", "name", "summary", "events", "flagged"),
    [
        (
            "ucdp-ged",
            "ucdp-ged.csv",
            "imported 16, duplicates 0, rejected 3, flagged 3",
            16,
            [(7, "244703"), (8, "244704"), (14, "244710")],
        ),
        (
            "plover",
            "plover.jsonl",
            "imported 10, duplicates 0, rejected 4, flagged 1",
            10,
            [(3, "SF-20170605-0003")],
        ),
        (
            "maverick",
            "maverick.csv",
            "imported 8, duplicates 0, rejected 2, flagged 3",
            8,
            [(7, "MAV-1006"), (8, "MAV-1007"), (11, "MAV-1010")],
        ),
    ],
)
async def test_import_summarises_flags_and_exits_2_on_rejected_rows(
    fresh_db: str, fmt: str, name: str, summary: str, events: int, flagged: list[tuple[int, str]]
) -> None:
    """The result on stdout with the flagged rows' lines and ids, the summary on stderr,
    exit 2 for the refused rows; a second run stores nothing new."""
    env = _env(DATABASE_URL=fresh_db)
    first = _run(["import", "--format", fmt, str(FIXTURES / name)], env)
    assert first.returncode == 2, first.stderr
    assert summary in first.stderr
    flags = [(f["line"], f["source_id"]) for f in json.loads(first.stdout)["flags"]]
    assert flags == flagged
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
