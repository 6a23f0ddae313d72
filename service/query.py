"""What a read asks for: as known at which commit, inside which box, after which change.

The API parses these values from query parameters (``service.api.parameters``) and the CLI
from its options; the projections and the export read with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from service.domain.time import utc_text

MAX_POSITION: Final = 2**63 - 1
"""The last log position there can be (a bigint)."""


@dataclass(frozen=True, slots=True)
class KnownAt:
    """``known_at``: a timestamp, or ``position:N``."""

    position: int | None = None
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class BBox:
    """A bounding box in degrees: west, south, east, north."""

    west: float
    south: float
    east: float
    north: float


@dataclass(frozen=True, slots=True)
class ChangeCursor:
    """Where a page of the front's changes ends: a place and the valid time of its change."""

    place: str
    at: datetime


def change_cursor_text(cursor: ChangeCursor) -> str:
    """The ``next_cursor`` that continues after ``cursor``."""
    return f"{cursor.place}@{utc_text(cursor.at)}"
