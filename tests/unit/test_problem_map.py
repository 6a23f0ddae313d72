"""service/api/problems.py: every error class Frontline raises meets HTTP there, as its own
answer (the conflict model's, the application's and the transport's errors alike); and every
problem type the code can answer with is in the one catalogue (contracts/problems.py), which
the README lists."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import Final

import pytest

from contracts.problems import CATALOGUE, TYPE_BASE, problem_type
from service import errors as application_errors
from service.api import errors as transport_errors
from service.api.problems import HTTP_PROBLEMS, PROBLEMS, http_slug
from service.domain import errors as domain_errors
from service.domain.errors import FrontlineError
from service.errors import InvalidParameter, UnknownParameter

MODULES = (domain_errors, application_errors, transport_errors)


def _error_classes(module: ModuleType) -> list[type[FrontlineError]]:
    return [
        value
        for _, value in inspect.getmembers(module, inspect.isclass)
        if issubclass(value, FrontlineError) and value.__module__ == module.__name__
    ]


ALL = [cls for module in MODULES for cls in _error_classes(module)]


def test_the_three_error_modules_define_errors() -> None:
    """Each error module holds error classes (a guard against the list below being empty)."""
    assert all(_error_classes(module) for module in MODULES)


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_each_error_class_is_answered_by_its_most_specific_entry(
    cls: type[FrontlineError],
) -> None:
    """Every error class is answered by the entry of the nearest class in its ancestry that
    PROBLEMS lists (itself, or a base such as InvalidEvent for BatchTooLarge), never by the
    catch-all 400 unless it is FrontlineError: the map is read in order, so a base listed
    before a subclass would take its instances over."""
    nearest = next(known for known in cls.__mro__ if known in PROBLEMS)
    first = next(known for known in PROBLEMS if issubclass(cls, known))
    assert first is nearest
    assert nearest is not FrontlineError or cls is FrontlineError


# --- the catalogue (contracts/problems.py): every type the code can answer with, and no other


ROOT: Final = Path(__file__).resolve().parents[2]
#: Functions that build a problem from a slug given as their argument at this index.
SLUG_ARGUMENT: Final = {"new_problem": 0, "problem_type": 0, "_raw_answer": 2}


def _constants(node: ast.expr) -> list[ast.expr]:
    """The values an expression can take, through ``a if c else b``."""
    if isinstance(node, ast.IfExp):
        return _constants(node.body) + _constants(node.orelse)
    return [node]


def _literal_slugs() -> set[str]:
    """Every slug written out in the service's source as a problem's type: the string
    arguments of the functions that build a problem (``new_problem``, ``problem_type``, the
    connection guard's ``_raw_answer``), and every string given to a variable named ``slug``
    (the only name such an argument may be passed by, apart from a literal)."""
    found: set[str] = set()
    for path in sorted((ROOT / "service").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                named = any(isinstance(t, ast.Name) and t.id == "slug" for t in targets)
                if named and node.value is not None:
                    found |= {
                        str(c.value) for c in _constants(node.value) if isinstance(c, ast.Constant)
                    }
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            index = SLUG_ARGUMENT.get(str(name))
            if index is None or len(node.args) <= index:
                continue
            for candidate in _constants(node.args[index]):
                if isinstance(candidate, ast.Name):
                    assert candidate.id == "slug", (path, node.lineno)
                    continue
                assert isinstance(candidate, ast.Constant), (path, node.lineno)
                found.add(str(candidate.value))
    return found


def _emitted() -> set[str]:
    statuses = range(400, 600)
    return (
        set(PROBLEMS.values())
        | set(HTTP_PROBLEMS.values())
        | {http_slug(status) for status in statuses}
        | _literal_slugs()
    )


def test_every_type_the_code_can_answer_with_is_in_the_catalogue() -> None:
    """Each slug the code can put in a problem's ``type`` (the error classes' map, the web
    framework's errors by status, the slugs written out where a problem is built, among them
    the connection guard's four) is in the catalogue, with the status the code answers it
    with; and every entry of the catalogue is answered by something (no dead entry)."""
    emitted = _emitted()
    assert emitted <= set(CATALOGUE), emitted - set(CATALOGUE)
    assert set(CATALOGUE) <= emitted, set(CATALOGUE) - emitted
    assert {"request-timeout", "uri-too-long", "header-too-large", "server-busy"} <= (
        _literal_slugs()
    )
    for status, slug in HTTP_PROBLEMS.items():
        assert CATALOGUE[slug].status == status, slug


def test_no_problem_type_is_built_outside_the_catalogue() -> None:
    """``TYPE_BASE`` (or the address it holds) is joined to a slug only where the catalogue is
    read (contracts/problems.py, ``new_problem`` in service/api/problems.py, and the OpenAPI
    document's list of the catalogue's types): no module makes up a type of its own, as the
    guard did from its titles and the HTTP errors from their status (``http-422``)."""
    allowed = {
        ROOT / "contracts" / "problems.py",
        ROOT / "service" / "api" / "problems.py",
        ROOT / "service" / "api" / "openapi.py",
    }
    for folder in ("service", "contracts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if path in allowed:
                continue
            assert "frontline.dev/problems" not in text, path
            assert "TYPE_BASE" not in text, path
    source = (ROOT / "service" / "api" / "problems.py").read_text(encoding="utf-8")
    assert source.count("TYPE_BASE +") == 1  # in new_problem, which reads the catalogue


def test_the_catalogue_is_well_formed() -> None:
    """Slugs are unique, lower-case words joined by hyphens; statuses are 4xx or 5xx; every
    entry says when it is answered; titles and statuses agree with the error classes'."""
    assert len(CATALOGUE) == len({kind.slug for kind in CATALOGUE.values()})
    for slug, kind in CATALOGUE.items():
        assert slug == kind.slug
        assert re.fullmatch(r"[a-z]+(?:-[a-z]+)*", slug), slug
        assert 400 <= kind.status < 600, slug
        assert kind.title
        assert kind.when
    assert problem_type("invalid-parameter") == TYPE_BASE + "invalid-parameter"
    with pytest.raises(KeyError):
        problem_type("http-422")


def test_every_refused_parameter_has_one_type() -> None:
    """A parameter refused by the framework (its declared pattern or bounds), by a handler
    (``InvalidParameter``) or because the route does not take it has a type of its own:
    ``invalid-parameter`` for the first two (before: ``http-422`` for the first), and
    ``unknown-parameter`` for the third."""
    assert PROBLEMS[InvalidParameter] == "invalid-parameter"
    assert HTTP_PROBLEMS[422] == "invalid-parameter"
    assert PROBLEMS[UnknownParameter] == "unknown-parameter"
    assert all(not slug.startswith("http-") for slug in _emitted())


def test_the_readme_lists_the_catalogue() -> None:
    """README.md's problem catalogue has one row per type, with its status, in the
    catalogue's order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z-]+)` \| (\d{3}) \|", readme, flags=re.MULTILINE)
    listed = [(slug, int(status)) for slug, status in rows if slug in CATALOGUE]
    assert listed == [(kind.slug, kind.status) for kind in CATALOGUE.values()]
