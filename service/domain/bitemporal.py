"""Bitemporal rows of a place's timeline: what changes when a commit changes the timeline.

Pure. The store keeps, for every place, the segments of its timeline each with a known range
of commit positions ``[known_from, known_to)``. When a commit ending at position ``p``
changes a place's timeline, the rows it replaces get ``known_to = p`` and the new ones
``known_from = p`` (DESIGN section 5). The same :func:`changes` serves the incremental path
(one commit at a time, in the append transaction) and the rebuild (every commit of the log
in order), so both produce the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec

from contracts.events import Event
from contracts.timeline import Segment, Timeline
from service.domain.policy import Policy
from service.domain.projection import project_place

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class SegmentRow:
    """One segment as a row: its valid interval, the fields queries filter on, its body."""

    place_id: str
    valid_from: datetime
    valid_to: datetime | None
    controller: str | None
    status: str
    status_by: str | None
    disputed: bool
    confidence: int
    basis: str
    body: bytes
    """The segment as JSON: the bytes every answer carries."""


def rows_of(place_id: str, timeline: Timeline) -> list[SegmentRow]:
    """The rows of a timeline, in valid-time order."""
    return [_row(place_id, segment) for segment in timeline.segments]


def _row(place_id: str, segment: Segment) -> SegmentRow:
    return SegmentRow(
        place_id=place_id,
        valid_from=segment.valid_from,
        valid_to=segment.valid_to,
        controller=segment.controller,
        status=segment.status,
        status_by=segment.status_by,
        disputed=segment.disputed,
        confidence=segment.confidence,
        basis=segment.basis,
        body=_encode(segment),
    )


@dataclass(frozen=True, slots=True)
class Changes:
    """What one commit does to one place's rows."""

    close: list[datetime]
    """``valid_from`` of the current rows to close (their ``known_to`` becomes the commit)."""
    insert: list[SegmentRow]
    """New rows (their ``known_from`` is the commit)."""


def changes(current: Mapping[datetime, bytes], new: Sequence[SegmentRow]) -> Changes:
    """Rows to close and rows to insert so that the current rows become ``new``.

    ``current`` maps each current row's ``valid_from`` to its body; the body holds the whole
    segment (its valid interval included), so equal bodies are equal rows. A row unchanged
    by the commit stays, with its original ``known_from``.
    """
    wanted = {row.valid_from: row for row in new}
    close = [start for start, body in current.items() if _body_of(wanted.get(start)) != body]
    insert = [row for row in new if current.get(row.valid_from) != row.body]
    return Changes(close=sorted(close), insert=insert)


def _body_of(row: SegmentRow | None) -> bytes | None:
    return None if row is None else row.body


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """A row with its known range, as the rebuild writes it."""

    row: SegmentRow
    known_from: int
    known_to: int | None


def history(
    place_id: str, commits: Iterable[tuple[int, Sequence[Event]]], policy: Policy
) -> list[HistoryRow]:
    """Every row a place ever had: its events replayed commit by commit, in position order.

    ``commits`` gives, in ascending order, each commit position that added events to the
    place and those events.
    """
    events: list[Event] = []
    open_rows: dict[datetime, tuple[SegmentRow, int]] = {}
    done: list[HistoryRow] = []
    for commit, added in commits:
        events.extend(added)
        new = rows_of(place_id, project_place(events, policy))
        delta = changes({start: row.body for start, (row, _) in open_rows.items()}, new)
        for start in delta.close:
            row, known_from = open_rows.pop(start)
            done.append(HistoryRow(row, known_from, commit))
        for row in delta.insert:
            open_rows[row.valid_from] = (row, commit)
    done.extend(HistoryRow(row, known_from, None) for row, known_from in open_rows.values())
    done.sort(key=lambda h: (h.known_from, h.row.valid_from))
    return done
