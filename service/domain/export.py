"""Reproducible exports: the same question gives the same bytes and the same ETag.

Pure. The log up to a commit position P is fixed by P's chain hash (each hash covers every
record before it), so an export's ETag is derived from (format, P, hash at P) without
reading it. The front as CSV is buffered and its ETag is the SHA-256 of its bytes. CSV
follows RFC 4180 (CRLF, quotes where needed); empty cells are nulls; booleans are
``true``/``false``; a text cell a spreadsheet would run as a formula starts with ``'``
(``service.domain.spreadsheet``).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

from contracts.events import Event, event_type
from contracts.responses import StoredEvent
from contracts.timeline import Segment
from service.domain.spreadsheet import neutralise
from service.domain.time import utc_text, valid_interval

EXPORT_VERSION: Final = "frontline-export-v2"  # v2: formula-like CSV cells neutralised
LOG_COLUMNS: Final = (
    "position", "id", "place", "place_version", "type", "valid_from", "valid_to",
    "recorded_at", "commit_position", "source", "reliability", "alignment", "side",
    "opponent", "hedge", "credibility", "killed", "hash", "payload",
)  # fmt: skip
STATE_COLUMNS: Final = (
    "place_id", "name", "lat", "lon", "controller", "status", "status_by", "disputed",
    "confidence", "basis", "held_since", "sources",
)  # fmt: skip


def log_etag(fmt: str, position: int, chain_hash: bytes) -> str:
    """The ETag of the log exported up to ``position`` in ``fmt`` (quoted, strong)."""
    seed = f"{EXPORT_VERSION}\n{fmt}\n{position}\n{chain_hash.hex()}".encode()
    return f'"{hashlib.sha256(seed).hexdigest()}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (RFC 9110: ``*`` or a list of tags,
    compared weakly)."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    ours = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == ours for tag in if_none_match.split(","))


def content_etag(body: bytes) -> str:
    """A strong ETag from the bytes themselves."""
    return f'"{hashlib.sha256(body).hexdigest()}"'


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, str):
        return neutralise(value)  # text only: numbers stay numbers (service.domain.spreadsheet)
    return str(value)


def csv_rows(rows: Iterable[Sequence[object]]) -> bytes:
    """RFC 4180 CSV of the rows (each cell through the export's formatting)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue().encode()


def log_row(stored: StoredEvent, event: Event) -> tuple[object, ...]:
    """One stored event as a row of LOG_COLUMNS."""
    start, end = valid_interval(event.occurred)
    figures = event.casualties
    return (
        stored.position, stored.id, stored.place, stored.place_version, event_type(event),
        start, end, stored.recorded_at, stored.commit_position, event.source.name,
        event.source.reliability, event.source.alignment, event.side, event.opponent,
        event.hedge, event.credibility, figures.killed if figures is not None else None,
        stored.hash, bytes(stored.event).decode(),
    )  # fmt: skip


def state_row(
    place_id: str,
    name: str,
    point: tuple[float, float] | None,
    segment: Segment,
    sources: Iterable[str],
) -> tuple[object, ...]:
    """One place's segment as a row of STATE_COLUMNS (``point`` is lat, lon)."""
    lat, lon = point if point is not None else (None, None)
    return (
        place_id, name, lat, lon, segment.controller, segment.status, segment.status_by,
        segment.disputed, segment.confidence, segment.basis, segment.held_since,
        "; ".join(sorted(set(sources))),
    )  # fmt: skip
