"""Named SQL: each ``sql/NAME.sql`` file is one query, loaded once at import."""

from __future__ import annotations

from importlib import resources
from typing import Final


def _load() -> dict[str, str]:
    folder = resources.files("service.store") / "sql"
    return {
        entry.name.removesuffix(".sql"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    }


SQL: Final = _load()
