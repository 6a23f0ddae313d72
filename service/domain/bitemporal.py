"""Bitemporal rows of a place's timeline: what changes when a commit changes the timeline.

Pure. The store keeps, for every place, the segments of its timeline each with a known range
of commit positions ``[known_from, known_to)``. When a commit ending at position ``p``
changes a place's timeline, the rows it replaces get ``known_to = p`` and the new ones
``known_from = p`` (DESIGN section 5). The same :class:`OpenRows` serves the incremental path
(one commit at a time, in the append transaction) and the rebuild (every commit of the log
in order), so both produce the same rows; a commit compares only the rows from the valid
times its refold changed (:class:`~service.domain.projection.Refold`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from contracts.events import Event
from contracts.timeline import Segment, Timeline
from service.domain.policy import Policy
from service.domain.projection import Part, PlaceFold, Refold
from service.domain.projection.facts import Fact
from service.domain.registry import PLACE_MARK, SOURCE_MARK, RegistryHistory

Commit = tuple[int, Sequence[Event | Fact]] | tuple[int, Sequence[Event | Fact], Sequence[str]]
"""A commit's events about a place: its position and the events (or their facts), and,
for a place some merge joined with others, the place stream each event is in (without it:
the place's own)."""

_encode = msgspec.json.Encoder().encode


class SegmentRow(msgspec.Struct, frozen=True, gc=False):
    """One segment as a row: its valid interval, the fields queries filter on, its body.

    A frozen msgspec Struct, not a frozen dataclass: a rebuild makes one per row it writes,
    and a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``;
    untracked by the garbage collector (nothing it holds points back).
    """

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
    segment: Segment | None = None
    """The segment itself, when the row was made from one (to compare without encoding)."""


def rows_of(place_id: str, timeline: Timeline | Sequence[Segment]) -> list[SegmentRow]:
    """The rows of a timeline (or of some of its segments), in valid-time order."""
    segments = timeline.segments if isinstance(timeline, Timeline) else timeline
    return [_row(place_id, segment) for segment in segments]


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
        segment=segment,
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


@dataclass(slots=True)
class OpenRows:
    """A place's current rows in valid-time order, each with the commit it became known at."""

    rows: list[SegmentRow] = field(default_factory=list)
    known_from: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def replace(
        self, place_id: str, refold: Refold, commit: int
    ) -> tuple[list[tuple[SegmentRow, int]], list[SegmentRow]]:
        """Make the rows those of the refolded timeline as of ``commit``.

        Returns the rows closed (with the commit each was known from) and the rows inserted,
        both in valid-time order. A row whose body is unchanged stays, with its original
        ``known_from``; rows outside the refold's parts are not looked at.
        """
        closed: list[tuple[SegmentRow, int]] = []
        inserted: list[SegmentRow] = []
        for part in refold.parts:
            self._replace_part(place_id, part, commit, closed, inserted)
        closed.sort(key=lambda item: item[0].valid_from)
        inserted.sort(key=_valid_from)
        return closed, inserted

    def _replace_part(
        self,
        place_id: str,
        part: Part,
        commit: int,
        closed: list[tuple[SegmentRow, int]],
        inserted: list[SegmentRow],
    ) -> None:
        rows, known_from = self.rows, self.known_from
        lo = 0 if part.since is None else bisect_left(rows, part.since, key=_valid_from)
        hi = len(rows) if part.until is None else bisect_left(rows, part.until, key=_valid_from)
        held = {
            row.valid_from: (row, known)
            for row, known in zip(rows[lo:hi], known_from[lo:hi], strict=True)
        }
        fresh: list[SegmentRow] = []
        fresh_known: list[int] = []
        for segment in part.segments:
            old = held.get(segment.valid_from)
            if old is not None and (old[0].segment is segment or old[0].segment == segment):
                row = old[0]  # equal: no need to encode it
            else:
                row = _row(place_id, segment)
            if old is not None and old[0].body == row.body:
                del held[row.valid_from]
                fresh.append(old[0])
                fresh_known.append(old[1])
            else:
                fresh.append(row)
                inserted.append(row)
                fresh_known.append(commit)
        for row, known in held.values():
            if known == commit:
                # Inserted by an earlier part of this same commit: never visible, never closed.
                inserted.remove(row)
            else:
                closed.append((row, known))
        rows[lo:hi] = fresh
        known_from[lo:hi] = fresh_known


def _valid_from(row: SegmentRow) -> datetime:
    return row.valid_from


class HistoryRow(msgspec.Struct, frozen=True, gc=False):
    """A row with its known range, as the rebuild writes it (a Struct: as :class:`SegmentRow`)."""

    row: SegmentRow
    known_from: int
    known_to: int | None


def history(
    place_id: str,
    commits: Iterable[Commit],
    policy: Policy,
    sides: RegistryHistory | None = None,
    upto: int | None = None,
) -> list[HistoryRow]:
    """Every row a place ever had: its events replayed commit by commit, in position order.

    ``commits`` gives, in ascending order, each commit position that added events to the
    place and those events (or their facts, read straight from payloads:
    :meth:`~service.domain.projection.facts.Fact.from_payload`). Each commit refolds only
    what it can change (:class:`PlaceFold`). ``sides``: the side registry's history, which
    the events are read through as known at each commit (and whose changes up to ``upto``
    that remap a name the place's events use fold it again, at their commit).
    """
    replay = PlaceReplay(place_id, policy, sides)
    done: list[HistoryRow] = []
    for commit, closed, _ in replay.advance(commits, upto):
        done.extend(HistoryRow(row, known_from, commit) for row, known_from in closed)
    done.extend(replay.open_rows())
    done.sort(key=lambda h: (h.known_from, h.row.valid_from))
    return done


class PlaceReplay:
    """A place's fold and current rows, replayed commit by commit as the append
    transaction makes them: each commit's events read through the side registry as known
    at that commit, and a commit that remaps a name the place's events use (an alias added
    or removed) folding the place again from all its events, at that commit's position.

    Merges (DESIGN 8): the replay may be given the events of other place streams (those a
    merge ever joined with this place, each commit saying each event's stream); an event
    counts for the place while its stream's place, as the registry is known at the commit,
    is this one. A merge or unmerge that changes which streams are the place's folds it
    again at the merge's position (a place merged away then has no rows).
    """

    def __init__(self, place_id: str, policy: Policy, sides: RegistryHistory | None) -> None:
        self.place_id = place_id
        self.policy = policy
        self.sides = sides if sides is not None else RegistryHistory()
        self.fold = PlaceFold(policy)
        self.rows = OpenRows()
        self._facts: list[Fact] = []
        """Every fact added, as the log states it (before the registry reads it)."""
        self._streams: list[str] = []
        """The place stream of each of those facts."""
        self._names: set[str] = set()
        """Every side name those facts use (side, opponent, alignment), and their sources'
        keys (marked ``source:``), and the place streams they are in (marked ``place:``)."""
        self._names.add(PLACE_MARK + place_id)
        self.upto = 0
        """The last position replayed."""

    def __len__(self) -> int:
        return len(self.fold)

    def advance(
        self,
        commits: Iterable[Commit],
        upto: int | None = None,
    ) -> Iterator[tuple[int, list[tuple[SegmentRow, int]], list[SegmentRow]]]:
        """Replay more commits (after :attr:`upto`, in ascending order), and the registry's
        changes up to ``upto`` (or the last commit); yield each commit that changed the rows,
        with the rows it closed (and the commit each was known from) and those it inserted."""
        for item in commits:
            commit, added = item[0], item[1]
            streams = item[2] if len(item) == 3 else None
            yield from self._registry_until(commit - 1)
            step = self._step(commit, added, streams)
            if step is not None:
                yield step
        if upto is not None:
            yield from self._registry_until(upto)

    def open_rows(self) -> list[HistoryRow]:
        """The current rows, still open."""
        return [
            HistoryRow(row, known_from, None)
            for row, known_from in zip(self.rows.rows, self.rows.known_from, strict=True)
        ]

    def _registry_until(
        self, position: int
    ) -> Iterator[tuple[int, list[tuple[SegmentRow, int]], list[SegmentRow]]]:
        for change in self.sides.between(self.upto, position):
            self.upto = change.commit
            if change.remapped & self._names:
                yield self._refold(change.commit)
        self.upto = max(self.upto, position)

    def _step(
        self, commit: int, added: Sequence[Event | Fact], streams: Sequence[str] | None
    ) -> tuple[int, list[tuple[SegmentRow, int]], list[SegmentRow]] | None:
        facts = [a if isinstance(a, Fact) else Fact.of(a) for a in added]
        place = self.place_id
        self._facts.extend(facts)
        if streams is None:
            self._streams.extend([place] * len(facts))
        else:
            self._streams.extend(streams)
            self._names.update(PLACE_MARK + stream for stream in set(streams))
        for fact in facts:
            self._names.update(
                (fact.side or "", fact.opponent or "", fact.alignment, SOURCE_MARK + fact.source)
            )
        remaps = any(
            change.remapped & self._names for change in self.sides.between(self.upto, commit)
        )
        self.upto = commit
        if remaps:
            return self._refold(commit)
        registry = self.sides.at(commit)
        if streams is None:
            mine = facts if registry.place_of(place) == place else []
        else:
            mine = [f for f, s in zip(facts, streams, strict=True) if registry.place_of(s) == place]
        refold = self.fold.add([registry.canonical_fact(f) for f in mine])
        if refold is None:
            return None
        closed, inserted = self.rows.replace(self.place_id, refold, commit)
        return commit, closed, inserted

    def _refold(self, commit: int) -> tuple[int, list[tuple[SegmentRow, int]], list[SegmentRow]]:
        """Fold the place again from all its facts, through the registry as known at
        ``commit``; the rows change at ``commit`` where the timeline does."""
        registry = self.sides.at(commit)
        self.fold = PlaceFold(self.policy)
        place = self.place_id
        self.fold.add(
            [
                registry.canonical_fact(f)
                for f, stream in zip(self._facts, self._streams, strict=True)
                if registry.place_of(stream) == place
            ]
        )
        whole = Refold((Part(None, None, tuple(self.fold.timeline().segments)),))
        closed, inserted = self.rows.replace(self.place_id, whole, commit)
        return commit, closed, inserted


JoinedCommit = tuple[int, list[Event | Fact], list[str]]
"""A commit of several place streams: its position, its events, and each one's stream."""


def stream_commits(rows: Iterable[tuple[str, int, Event | Fact]]) -> list[JoinedCommit]:
    """The commits of several place streams' events, given in position order as (stream,
    commit position, event or fact): what a replay of a place some merge joined reads."""
    commits: list[JoinedCommit] = []
    for stream, commit, event in rows:
        if commits and commits[-1][0] == commit:
            commits[-1][1].append(event)
            commits[-1][2].append(stream)
        else:
            commits.append((commit, [event], [stream]))
    return commits
