"""The format readers by the name ``?format=`` and ``--format`` use.

Each reader is a pure ``read(data: bytes) -> Iterator[SourceRow]`` (``ValueError`` when the
file as a whole is unreadable). Registering a format is one line below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from service.domain.interop import acled, plover, ucdp
from service.domain.interop.rows import SourceRow

Reader = Callable[[bytes], Iterator[SourceRow]]

READERS: Final[dict[str, Reader]] = {
    "acled": acled.read,
    "ucdp-ged": ucdp.read,
    "plover": plover.read,
}


def reader(name: str) -> Reader | None:
    """The reader of format ``name``, or None when there is none."""
    return READERS.get(name)
