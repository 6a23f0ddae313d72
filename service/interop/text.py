"""Source text made to fit the contract's text fields, shared by the format readers.

A source cell may hold newlines, tabs and any length; the contract's one-line ``Text`` fields
(names, actors, attributions) refuse control characters and stop at 2,000 characters, and its
``LongText`` fields (quote, notes) stop at 20,000. The raw record, kept in ``notes``, keeps
the original; these helpers only shape the copies that go into one-line fields.
"""

from __future__ import annotations

import re
from typing import Final

TEXT_MAX: Final = 2000
LONG_TEXT_MAX: Final = 20000

_CONTROL_RUNS = re.compile(r"[\x00-\x1f\x7f]+")
_SPACES = re.compile(r" {2,}")


def one_line(text: str | None, limit: int = TEXT_MAX) -> str | None:
    """``text`` on one line (control characters, newlines included, become one space), at
    most ``limit`` characters; ``None`` when nothing is left."""
    if text is None:
        return None
    if text.isprintable() and "  " not in text:
        # The common case, no control character and no run of spaces: just trim.
        return text.strip()[:limit].strip() or None
    flat = _SPACES.sub(" ", _CONTROL_RUNS.sub(" ", text)).strip()[:limit].strip()
    return flat or None


def long_text(text: str | None) -> str | None:
    """``text`` cut to the contract's ``LongText`` limit; ``None`` when blank."""
    if text is None or not text.strip():
        return None
    return text[:LONG_TEXT_MAX]
