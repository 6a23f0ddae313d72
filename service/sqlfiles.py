"""Named SQL, checked: each package that runs SQL keeps its queries in its own ``sql/`` folder,
one query a file (``sql/NAME.sql``), and declares them as the ``str`` attributes of a
:class:`SqlFolder` subclass. Loading compares the two, so a declared query without its file,
or a file nobody declared, stops the import; and a call site names a query as an attribute
(``SQL.read_state``), which mypy checks."""

from __future__ import annotations

import inspect
from importlib import resources
from typing import Any, ClassVar, Final, Self

SUFFIX: Final = ".sql"


class SqlFolderError(RuntimeError):
    """A package's ``sql/`` folder and its declared queries differ."""


class SqlFolder:
    """The queries of one package's ``sql/`` folder: subclass it with ``package=`` and one
    ``name: str`` annotation per file, then ``load()`` once at import."""

    package: ClassVar[str]
    """The package whose ``sql/`` folder holds the files."""
    folders: ClassVar[dict[str, type[SqlFolder]]] = {}
    """Every declared folder, by package (a test checks that no ``sql/`` folder is left out)."""

    def __init_subclass__(cls, *, package: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.package = package
        for name, annotation in inspect.get_annotations(cls).items():
            if annotation not in ("str", str):
                raise TypeError(f"{cls.__name__}.{name}: a query is declared as `str`")
        SqlFolder.folders[package] = cls

    @classmethod
    def names(cls) -> frozenset[str]:
        """The queries this class declares."""
        return frozenset(inspect.get_annotations(cls))

    @classmethod
    def load(cls) -> Self:
        """Every declared query's text, read from the package's ``sql/`` folder (installed
        or not: through importlib.resources); raises :class:`SqlFolderError` when a
        declared query has no file or a file is not declared."""
        folder = resources.files(cls.package) / "sql"
        texts = {
            entry.name.removesuffix(SUFFIX): entry
            for entry in folder.iterdir()
            if entry.name.endswith(SUFFIX)
        }
        declared = cls.names()
        missing = sorted(declared - texts.keys())
        undeclared = sorted(texts.keys() - declared)
        if missing or undeclared:
            raise SqlFolderError(
                f"{cls.package}/sql and {cls.__name__} differ: "
                f"declared without a file {missing}, files not declared {undeclared}"
            )
        loaded = object.__new__(cls)
        for name in declared:
            object.__setattr__(loaded, name, texts[name].read_text(encoding="utf-8"))
        return loaded

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")
