"""What every format reader produces: one :class:`SourceRow` per record of the source file.

A reader never touches the database. It maps each record to wire-contract events (plain dicts,
``place`` left out: every event of a row is about the row's :class:`PlaceRef`, whose Frontline
id the importer resolves by name, alias and distance), or to an ``error`` saying why the record
cannot be mapped. ``raw`` is the record as the source gave it, kept with each imported event.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

#: The namespace of every imported event id: uuid5(NAMESPACE, "<format>:<source id>:<role>").
NAMESPACE: Final = uuid.UUID("3f1c2a8e-6b0d-5e4f-9a71-0c8d2b6e4f10")


@dataclass(frozen=True, slots=True)
class PlaceRef:
    """A place as a source names it; the importer finds or registers the Frontline place."""

    name: str
    lat: float | None = None
    lon: float | None = None
    precision: str | None = None
    """A contract ``LocationPrecision``: exact, near, district, region, country."""
    kind: str | None = None
    admin: tuple[str, ...] = ()
    """Enclosing areas from the largest down (country, admin1, admin2 ...), for the notes."""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One record of a source file and what it maps to."""

    line: int
    """The 1-based line where the record starts (CSV, JSON lines) or its index (JSON array)."""
    source_id: str | None
    """The source's own id for the record (ACLED event_id_cnty, UCDP id, PLOVER id)."""
    raw: str
    """The record as the source gave it (a JSON object of its columns or members)."""
    place: PlaceRef | None = None
    events: tuple[dict[str, Any], ...] = ()
    """Wire-contract events without ``place``; ids derived with :func:`event_id`."""
    flags: tuple[str, ...] = ()
    """Reasons the record is suspicious but imported as given (e.g. low > best)."""
    error: str | None = None
    """Why the record cannot be mapped; then ``events`` is empty and nothing is stored."""
    fields: tuple[str, ...] = field(default=())
    """The source columns an ``error`` or flag is about, when there are some."""


def event_id(fmt: str, source_id: str, role: str) -> uuid.UUID:
    """The deterministic id of the event ``role`` (e.g. ``clash``) made from a source record,
    so that importing the same file twice stores nothing new."""
    return uuid.uuid5(NAMESPACE, f"{fmt}:{source_id}:{role}")


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str, limit: int = 128) -> str:
    """A contract slug for an actor or a place name: ASCII letters and digits joined by '-'
    ('Military Forces of Syria (2000-)' -> 'military-forces-of-syria-2000'); at most
    ``limit`` characters.

    Accents are dropped ('Akçakale' -> 'akcakale'); letters ASCII cannot spell (Arabic,
    Cyrillic, Turkish dotless i, 'ß') are not: the slug then ends in ``x-`` and the first
    10 hex digits of the SHA-256 of the name (NFC, lower-cased, white space collapsed), so
    'حلب' and 'دمشق' are two stable ids ('x-...') whatever was imported before them, never
    one 'unnamed'."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = decomposed.encode("ascii", "ignore").decode()
    s = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
    lost = any(c.isalpha() and not c.isascii() for c in decomposed)
    if s and not lost:
        return s[:limit].strip("-")
    name = " ".join(unicodedata.normalize("NFC", text).lower().split())
    digest = "x-" + hashlib.sha256(name.encode()).hexdigest()[:10]
    head = s[: limit - len(digest) - 1].strip("-")
    return f"{head}-{digest}" if head else digest


#: msgspec writes the same text as ``json.dumps(record, ensure_ascii=False, separators=(",",
#: ":"))`` (non-ASCII kept, control characters escaped alike), several times faster.
_encode: Final = msgspec.json.Encoder().encode


def raw_json(record: Mapping[str, Any]) -> str:
    """A record as one line of JSON, non-ASCII kept as is: the text of
    ``json.dumps(record, ensure_ascii=False, separators=(",", ":"))``, so stored notes and
    event ids of files imported before stay the same. The record's text is decoded from UTF-8
    (it holds no unpaired surrogate, which msgspec cannot encode)."""
    return _encode(record).decode()


def read_csv(data: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    """The records of a CSV file (UTF-8, with or without BOM; quoted fields may hold commas
    and newlines) as (line where the record starts, column -> cell) pairs. Cells are stripped;
    an empty cell is ''. Raises ``ValueError`` when the bytes are not UTF-8 CSV with a header."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 at byte {exc.start}") from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError("the file is empty") from None
    except csv.Error as exc:
        raise ValueError(f"line 1: {exc}") from exc
    names = [h.strip() for h in header]
    start = reader.line_num + 1
    try:
        for cells in reader:
            if cells and any(c.strip() for c in cells):
                yield (
                    start,
                    {n: (cells[i].strip() if i < len(cells) else "") for i, n in enumerate(names)},
                )
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ValueError(f"line {reader.line_num}: {exc}") from exc
