"""The format readers by the name ``?format=`` and ``--format`` use.

Each reader is a pure ``read(data: bytes) -> Iterator[SourceRow]`` (``ValueError`` when the
file as a whole is unreadable). Registering a format is one line below. The API and the CLI
both read a file through :func:`read_all`, so they accept and refuse the same files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from service.interop import acled, maverick, plover, ucdp
from service.interop.rows import SourceRow

Reader = Callable[[bytes], Iterator[SourceRow]]

READERS: Final[dict[str, Reader]] = {
    "acled": acled.read,
    "ucdp-ged": ucdp.read,
    "plover": plover.read,
    "maverick": maverick.read,
}


def reader(name: str) -> Reader | None:
    """The reader of format ``name``, or None when there is none."""
    return READERS.get(name)


def read_all(name: str, data: bytes) -> list[SourceRow]:
    """Every row of ``data`` read as format ``name`` (a key of :data:`READERS`), read whole so
    that an unreadable file stores nothing. Raises ``ValueError`` when the file as a whole
    cannot be read; a record a reader cannot parse is an error row, never an exception."""
    read = READERS[name]
    try:
        return list(read(data))
    except RecursionError:
        # Readers turn nesting too deep for the parsers into error rows or a ValueError;
        # this keeps any path they missed an unreadable file rather than a server error.
        raise ValueError("nested too deeply to read") from None
