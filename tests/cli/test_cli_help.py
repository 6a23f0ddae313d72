"""The command line's help, read as a new user reads it: every command listed, plain text."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

from service import cli

FRONTLINE = [sys.executable, "-m", "service.cli"]


def _help(*command: str) -> str:
    """What ``frontline <command> --help`` prints (exit status 0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTLINE_")}
    done = subprocess.run(  # noqa: S603 (our own command)
        [*FRONTLINE, *command, "--help"], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand the parser accepts, by name."""
    action = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_top_help_lists_every_command_in_plain_text() -> None:
    """``frontline --help`` lists each subcommand of the parser at the start of a line of its
    commands section, and shows no RST backticks."""
    text = _help()
    assert "`" not in text
    listed = set(re.findall(r"^    ([a-z][a-z-]*)(?:\s|$)", text, flags=re.MULTILINE))
    assert set(_commands()) == listed
    assert len(listed) == 13


def test_every_command_help_is_whole_sentences() -> None:
    """No command's help is cut short ("...") or shows RST backticks, and ``frontline import
    --help`` says what it imports and when it exits 2, ending its description on a full stop."""
    for name in _commands():
        text = _help(name)
        assert "`" not in text, name
        # argparse's own "{create,list,revoke} ..." (more arguments follow) is not prose.
        assert re.search(r"[A-Za-z] ?\.\.\.", text) is None, name
    text = _help("import")
    description = " ".join(text.split("\n\n")[1].split())
    assert description.startswith("Bulk-import events from an NDJSON file")
    assert "ACLED, PLOVER or UCDP GED" in description
    assert "Exits 2" in description
    assert description.endswith(".")
