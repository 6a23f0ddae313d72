"""The test suite itself: every test says in its docstring the behaviour it pins (STYLE.md).

Read with ``ast``, not imported, so that a module that cannot import (a browser test without
Playwright) is checked too and nothing runs at collection.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

TESTS: Final = Path(__file__).resolve().parents[1]


def undocumented(source: str) -> list[tuple[int, str]]:
    """(line, name) of each test function or method in ``source`` without a docstring."""
    return [
        (node.lineno, node.name)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
        and not (ast.get_docstring(node) or "").strip()
    ]


def test_every_test_in_the_suite_has_a_docstring() -> None:
    """No ``test_*`` function or method in any tests/**/test_*.py lacks a docstring; the
    failure lists each one as path:line name."""
    files = sorted(TESTS.rglob("test_*.py"))
    assert len(files) > 50, files  # the walk found the suite, not an empty folder
    missing = [
        f"{path.relative_to(TESTS.parent)}:{line} {name}"
        for path in files
        for line, name in undocumented(path.read_text(encoding="utf-8"))
    ]
    assert not missing, "tests without a docstring:\n" + "\n".join(missing)


def test_the_check_finds_functions_and_methods_without_one() -> None:
    """The walk catches plain, async and class-method tests without a docstring (or with an
    empty one) and leaves documented tests and non-test helpers alone."""
    source = '''
def test_plain(): pass
async def test_async(): pass
def test_empty():
    """"""
def test_documented():
    """Says what it proves."""
def helper(): pass
class TestGroup:
    def test_method(self): pass
    async def test_documented_method(self):
        """Says it too."""
'''
    assert undocumented(source) == [
        (2, "test_plain"),
        (3, "test_async"),
        (4, "test_empty"),
        (10, "test_method"),
    ]
