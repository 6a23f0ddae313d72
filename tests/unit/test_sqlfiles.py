"""Named SQL is checked when it loads (service/sqlfiles.py): a declared query without its file
and a file nobody declared both stop the load, and every package's declared queries load."""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from service.projections.queries import SQL as PROJECTION_SQL
from service.projections.queries import ProjectionSQL
from service.sqlfiles import SqlFolder, SqlFolderError
from service.store.queries import SQL as STORE_SQL
from service.store.queries import StoreSQL

SERVICE: Final = Path(__file__).resolve().parents[2] / "service"
_numbers = itertools.count()


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A real importable package of its own (on sys.path for this test) with an empty
    ``sql/`` folder: its name and that folder."""
    name = f"sqlfiles_probe_{next(_numbers)}"
    root = tmp_path / name
    (root / "sql").mkdir(parents=True)
    (root / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield name, root / "sql"
    sys.modules.pop(name, None)
    SqlFolder.folders.pop(name, None)


def test_declared_queries_load_with_their_text(package: tuple[str, Path]) -> None:
    """Each declared query is read from its own file, as an attribute of the loaded object."""
    name, folder = package
    (folder / "read_one.sql").write_text("SELECT 1\n", encoding="utf-8")
    (folder / "read_two.sql").write_text("SELECT 2\n", encoding="utf-8")

    class Probe(SqlFolder, package=name):
        read_one: str
        read_two: str

    sql = Probe.load()
    assert (sql.read_one, sql.read_two) == ("SELECT 1\n", "SELECT 2\n")
    with pytest.raises(AttributeError):
        sql.read_one = "DROP TABLE events"


def test_a_declared_query_without_its_file_stops_the_load(package: tuple[str, Path]) -> None:
    """A query declared but with no ``sql/NAME.sql`` file raises at load, naming it."""
    name, folder = package
    (folder / "read_one.sql").write_text("SELECT 1\n", encoding="utf-8")

    class Probe(SqlFolder, package=name):
        read_one: str
        read_gone: str

    with pytest.raises(SqlFolderError, match=r"declared without a file \['read_gone'\]"):
        Probe.load()


def test_a_file_nobody_declared_stops_the_load(package: tuple[str, Path]) -> None:
    """A ``sql/NAME.sql`` file that the package's class does not declare raises at load,
    naming it: no query sits unchecked in a folder."""
    name, folder = package
    (folder / "read_one.sql").write_text("SELECT 1\n", encoding="utf-8")
    (folder / "read_stray.sql").write_text("SELECT 2\n", encoding="utf-8")

    class Probe(SqlFolder, package=name):
        read_one: str

    with pytest.raises(SqlFolderError, match=r"files not declared \['read_stray'\]"):
        Probe.load()


def test_a_query_is_declared_as_a_string(package: tuple[str, Path]) -> None:
    """A declaration of another type is refused when the class is made."""
    name, _ = package
    with pytest.raises(TypeError, match="read_one"):

        class Probe(SqlFolder, package=name):
            read_one: int


def test_every_declared_query_of_the_service_loads() -> None:
    """The store's and the projections' queries each load from their own folder, none empty,
    one file each; and each of service/'s sql/ folders has a class declaring it."""
    for declared, loaded in ((StoreSQL, STORE_SQL), (ProjectionSQL, PROJECTION_SQL)):
        folder = SERVICE.joinpath(*declared.package.split(".")[1:], "sql")
        assert declared.names() == {p.stem for p in folder.glob("*.sql")}
        for query in declared.names():
            assert getattr(loaded, query).strip(), f"{declared.package}: {query}.sql is empty"
    folders = {
        ".".join(("service", *p.parent.relative_to(SERVICE).parts)) for p in SERVICE.rglob("sql")
    }
    assert folders <= SqlFolder.folders.keys()
    assert StoreSQL.names().isdisjoint(ProjectionSQL.names())
