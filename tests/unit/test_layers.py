"""The layers hold by their imports and names, read from the source with ``ast``: the domain
(service/domain/) is the conflict model alone, with no web framework, driver, network or
HTTP name and nothing of the layers above it; the API (service/api/) reaches the database
only through the layers below it, never through the driver."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
SERVICE: Final = ROOT / "service"

#: Modules the domain may not import (each with everything below it): the web framework and
#: servers, the database driver and migrations, HTTP and network clients.
TRANSPORT: Final = frozenset(
    {
        "litestar",
        "starlette",
        "uvicorn",
        "hypercorn",
        "asyncpg",
        "sqlalchemy",
        "alembic",
        "psycopg",
        "psycopg2",
        "http",
        "httpx",
        "aiohttp",
        "requests",
        "urllib3",
        "urllib.request",
        "socket",
        "ssl",
    }
)

#: Words that name HTTP in an identifier, as the identifier's own parts (``status_code`` is
#: ``status`` then ``code``; ``if_none_match`` three words), so that ``statuses`` or a
#: ``code`` alone never match.
HTTP_WORDS: Final = (("http",), ("https",), ("bearer",), ("etag",), ("status", "code"))
HTTP_WORDS_WITH_IF: Final = (("if", "none", "match"), ("if", "match"))

_WORD: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _modules(folder: Path) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(folder.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every module an import statement names, with its line (relative imports resolved
    only as far as saying they are relative: the code base uses none)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _within(module: str, roots: frozenset[str]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


def _identifiers(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every name the code gives or uses: variables, attributes, functions, classes,
    arguments, keywords and import aliases (never strings or docstrings)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.lineno, node.name
        elif isinstance(node, ast.arg):
            yield node.lineno, node.arg
        elif isinstance(node, ast.keyword) and node.arg is not None:
            yield node.value.lineno, node.arg
        elif isinstance(node, ast.alias):
            yield node.lineno, node.asname or node.name.rpartition(".")[2]


def _words(identifier: str) -> tuple[str, ...]:
    """An identifier's words, lower case: ``status_code`` and ``statusCode`` are both
    ``("status", "code")``; ``HTTPError`` is ``("http", "error")``."""
    return tuple(w.lower() for w in _WORD.findall(identifier))


def _holds(words: tuple[str, ...], run: tuple[str, ...]) -> bool:
    return any(words[i : i + len(run)] == run for i in range(len(words) - len(run) + 1))


def test_the_word_splitter_reads_identifiers_as_intended() -> None:
    """The identifier check sees HTTP names in every spelling, and only as whole words."""
    assert _words("status_code") == ("status", "code")
    assert _words("HTTPError") == ("http", "error")
    assert _words("if_none_match") == ("if", "none", "match")
    assert _holds(_words("parse_if_none_match"), ("if", "none", "match"))
    assert not _holds(_words("statuses_by_code"), ("status", "code"))
    assert not any(_holds(_words("ShttpX_etagere"), run) for run in HTTP_WORDS)


def test_the_domain_imports_no_transport_and_no_outer_layer() -> None:
    """No module under service/domain/ imports a web framework, server, database driver or
    network client, nor any of service/ outside the domain (api, store, projections, the
    format readers, the application's errors, settings): the conflict model stands alone."""
    found = []
    for path, tree in _modules(SERVICE / "domain"):
        for line, module in _imported(tree):
            outside = module.startswith("service") and not _within(
                module, frozenset({"service.domain"})
            )
            if _within(module, TRANSPORT) or outside or module.startswith("."):
                found.append(f"{path.relative_to(SERVICE.parent)}:{line} imports {module}")
    assert not found, "\n".join(found)


def test_the_format_readers_are_pure_adapters() -> None:
    """No module under service/interop/ imports a web framework, driver or network client,
    nor the API, the store or the projections: a reader turns bytes into rows of Frontline
    events, and the store appends them."""
    allowed = frozenset({"service.domain", "service.interop"})
    found = []
    for path, tree in _modules(SERVICE / "interop"):
        for line, module in _imported(tree):
            outside = module.startswith("service") and not _within(module, allowed)
            if _within(module, TRANSPORT) or outside or module.startswith("."):
                found.append(f"{path.relative_to(SERVICE.parent)}:{line} imports {module}")
    assert not found, "\n".join(found)


def test_the_domain_names_nothing_of_http() -> None:
    """No identifier under service/domain/ names an HTTP concept (HTTP, Bearer, ETag,
    status_code, If-None-Match / If-Match): headers, status codes and authentication
    schemes are the API's."""
    found = []
    for path, tree in _modules(SERVICE / "domain"):
        for line, identifier in _identifiers(tree):
            words = _words(identifier)
            if any(_holds(words, run) for run in HTTP_WORDS + HTTP_WORDS_WITH_IF):
                found.append(f"{path.relative_to(SERVICE.parent)}:{line} names {identifier}")
    assert not found, "\n".join(found)


def test_the_api_reaches_the_database_only_through_the_layers_below() -> None:
    """No module under service/api/ imports the database driver: reads and writes go
    through the store, the projections and the use cases, which hand back contract structs,
    never driver rows."""
    found = [
        f"{path.relative_to(SERVICE.parent)}:{line} imports {module}"
        for path, tree in _modules(SERVICE / "api")
        for line, module in _imported(tree)
        if _within(module, frozenset({"asyncpg"}))
    ]
    assert not found, "\n".join(found)


def test_the_benchmarks_import_nothing_of_the_reliability_checks() -> None:
    """No module under bench/ imports reliability/: the reliability checks build on the
    benchmarks' servers and client (bench/servers.py, bench/client.py), never the reverse."""
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path, tree in _modules(ROOT / "bench")
        for line, module in _imported(tree)
        if _within(module, frozenset({"reliability"}))
    ]
    assert not found, "\n".join(found)


def _module_name(path: Path) -> str:
    parts = path.relative_to(SERVICE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_domain_modules_import_in_one_direction() -> None:
    """No circle of imports among the domain's modules (type-only imports count too): each
    module reads only modules below it, so any of them can be read, and loaded, first."""
    trees = {_module_name(path): tree for path, tree in _modules(SERVICE / "domain")}
    graph = {
        name: {module for _, module in _imported(tree) if module in trees and module != name}
        for name, tree in trees.items()
    }
    # A package's __init__ imports its modules; a module that imports its own package's
    # __init__ would close a circle through it, which the walk below sees too.
    circles = []
    state: dict[str, str] = {}

    def walk(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target, [*path, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert circles == [], circles


#: What of the repository the client may import: the wire contract and itself.
CLIENT_MAY_IMPORT: Final = frozenset({"contracts", "frontline"})
#: The repository's own top-level packages (the client may import none but the above).
PROJECT: Final = frozenset(
    {"service", "contracts", "frontline", "migrations", "demo", "bench", "reliability", "tests"}
)


def test_the_client_stands_on_the_contract_alone() -> None:
    """No module under frontline/ (the Python client) imports anything of service/ (the
    API, the store, the projections, bootstrap, the domain), the migrations, the benchmarks
    or the tests: it speaks HTTP and reads the contract's structs, so it runs where the
    service's dependencies are not installed. It derives event ids with the contract's own
    function (contracts.idempotency), as the service does."""
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path, tree in _modules(ROOT / "frontline")
        for line, module in _imported(tree)
        if (_within(module, PROJECT) and not _within(module, CLIENT_MAY_IMPORT))
        or module.startswith(".")
    ]
    assert not found, "\n".join(found)


def test_only_the_command_line_uses_the_client() -> None:
    """The contract imports nothing of the client, and within service/ only the command
    line does (``--url``: import, export and verify against a remote server)."""
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for folder in (ROOT / "contracts", SERVICE)
        for path, tree in _modules(folder)
        for line, module in _imported(tree)
        if _within(module, frozenset({"frontline"}))
        and path.relative_to(SERVICE.parent).as_posix()
        not in {"service/cli.py", "service/remote.py"}
    ]
    assert not found, "\n".join(found)
