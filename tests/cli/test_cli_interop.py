"""`frontline import --format acled FILE`: the same import as POST /v1/imports, from a shell."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
from pathlib import Path
from typing import Final

from tests.cli.test_cli import FRONTLINE, _count, _env, _run

FIXTURE: Final = Path(__file__).resolve().parents[1] / "fixtures" / "interop" / "acled.csv"


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


def test_a_terminal_gets_a_progress_bar(fresh_db: str) -> None:
    """With stderr on a terminal, the import draws its bar (to 100 %) before the summary."""
    master, terminal = pty.openpty()
    try:
        done = subprocess.run(  # noqa: S603 (our own command, fixed arguments)
            [*FRONTLINE, "import", "--format", "acled", str(FIXTURE)],
            env=_env(DATABASE_URL=fresh_db),
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
    assert done.returncode == 2
    text = seen.decode()
    assert "importing acled.csv [" in text
    assert "100.0%" in text
    assert text.index("100.0%") < text.index("imported 11, duplicates 0, rejected 2, flagged 0")
