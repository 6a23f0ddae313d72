"""Properties of the bitemporal rows (``service.domain.bitemporal``, DESIGN 5), pure.

``changes`` is the step both the append transaction and the rebuild take; ``history`` is the
rebuild's replay of one place commit by commit. The oracle is always ``project_place`` over
the events known at a commit: the rows known there must be exactly its rows.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import Event, Relation
from service.domain.bitemporal import Changes, HistoryRow, SegmentRow, changes, history, rows_of
from service.domain.policy import CREDIBILITY_V2
from service.domain.projection import project_place
from tests.unit.builders import (
    GOV,
    ISIS,
    PLACE,
    SDF,
    US,
    casualties,
    confirmation,
    denial,
    event,
    retraction,
    source,
    uid,
)

SETTINGS = settings(max_examples=120, deadline=None)

SIDES = (GOV, ISIS, SDF, US)
SOURCES = (
    source("Alpha", "B"),
    source("Bravo", "C", GOV),
    source("Charlie", "D", ISIS),
    source("Delta", "F"),
    source("Echo", "A", SDF),
)
KINDS = (
    *("capture",) * 4,
    *("control",) * 3,
    *("withdrawal",) * 2,
    "base_established",
    "base_evacuated",
    *("encirclement",) * 2,
    "siege_lifted",
    *("clash",) * 2,
    "counter_attack",
    "casualties",
    "strike",
)
RELATIONS: tuple[Relation, ...] = ("denies", "confirms", "retracts", "denies", "retracts")


@st.composite
def logs(draw: st.DrawFn, *, max_events: int = 22) -> list[Event]:
    """A place's events in log order: claims, statuses, noise, and statements that deny,
    confirm or retract earlier events (a retraction may retract a retraction).

    Valid times are drawn independently of log order, so later events are often backdated.
    """
    events: list[Event] = []
    for n in range(draw(st.integers(1, max_events))):
        kw: dict[str, Any] = {"id": uid(n + 1), "on": f"2017-06-{draw(st.integers(1, 24)):02d}"}
        if events and draw(st.integers(0, 3)) == 0:
            target = draw(st.sampled_from(events))
            relation = draw(st.sampled_from(RELATIONS))
            if relation == "retracts":
                events.append(retraction(target, **kw))
            elif relation == "confirms":
                events.append(confirmation(target, draw(st.sampled_from(SOURCES)), **kw))
            else:
                events.append(denial(target, draw(st.sampled_from(SOURCES)), **kw))
            continue
        kind = draw(st.sampled_from(KINDS))
        kw["by"] = draw(st.sampled_from(SOURCES))
        kw["credibility"] = draw(st.integers(1, 6))
        kw["precision"] = draw(st.sampled_from(("day", "day", "day", "week")))
        if kind == "casualties":
            events.append(casualties(draw(st.integers(0, 50)), **kw))
            continue
        opponent = draw(st.none() | st.sampled_from(SIDES))
        events.append(event(kind, draw(st.sampled_from(SIDES)), opponent=opponent, **kw))
    return events


@st.composite
def committed_logs(draw: st.DrawFn) -> list[tuple[int, list[Event]]]:
    """A place's log cut into commits at ascending positions, with gaps (other places'
    commits in between). Each commit holds at least one event of the place."""
    events = draw(logs())
    commits: list[tuple[int, list[Event]]] = []
    position = draw(st.integers(0, 3))
    rest = events
    while rest:
        size = draw(st.integers(1, min(4, len(rest))))
        position += size + draw(st.integers(0, 5))
        commits.append((position, rest[:size]))
        rest = rest[size:]
    return commits


def rows_for(events: list[Event]) -> list[SegmentRow]:
    """The oracle: the rows of the projection of ``events``."""
    return rows_of(PLACE, project_place(events, CREDIBILITY_V2))


def known_at(rows: list[HistoryRow], position: int) -> list[SegmentRow]:
    """The rows of a history known at ``position``, in valid-time order."""
    return sorted(
        (
            h.row
            for h in rows
            if h.known_from <= position and (h.known_to is None or h.known_to > position)
        ),
        key=lambda r: r.valid_from,
    )


def as_current(rows: list[SegmentRow]) -> dict[datetime, bytes]:
    """Rows as the store reads its current ones: body by valid_from."""
    return {r.valid_from: r.body for r in rows}


def apply_changes(current: dict[datetime, bytes], delta: Changes) -> dict[datetime, bytes]:
    """The current rows after a commit closes and inserts what ``delta`` says."""
    after = {start: body for start, body in current.items() if start not in delta.close}
    for row in delta.insert:
        assert row.valid_from not in after, "an insert over a row left open"
        after[row.valid_from] = row.body
    return after


def check_changes(current: dict[datetime, bytes], new: list[SegmentRow]) -> None:
    """``changes`` closes exactly the changed or vanished rows, inserts exactly the new or
    changed ones, and so turns ``current`` into ``new``."""
    delta = changes(current, new)
    wanted = {r.valid_from: r.body for r in new}
    assert set(delta.close) == {
        start for start, body in current.items() if wanted.get(start) != body
    }
    assert delta.close == sorted(delta.close)
    assert len(set(delta.close)) == len(delta.close)
    assert delta.insert == [r for r in new if current.get(r.valid_from) != r.body]
    unchanged = {start for start, body in current.items() if wanted.get(start) == body}
    assert unchanged.isdisjoint(delta.close)
    assert unchanged.isdisjoint(r.valid_from for r in delta.insert)
    assert apply_changes(current, delta) == wanted


# --------------------------------------------------------------------------------------------
# changes()

T0 = datetime(2017, 6, 1, tzinfo=UTC)


def row(day: int, body: bytes) -> SegmentRow:
    """A synthetic row: only ``valid_from`` and ``body`` matter to ``changes``."""
    start = T0 + timedelta(days=day)
    return SegmentRow(PLACE, start, None, GOV, "controlled", None, False, 60, "assessed", body)


def test_changes_closes_changed_and_vanished_rows_and_inserts_new_and_changed_ones() -> None:
    """Of four current rows, the unchanged two stay alone; the changed one is closed and
    inserted anew, the vanished one closed; a row at a new valid_from is inserted."""
    current = {row(d, b).valid_from: b for d, b in ((1, b"a"), (2, b"b"), (3, b"c"), (4, b"d"))}
    new = [row(1, b"a"), row(2, b"B"), row(4, b"d"), row(5, b"e")]
    delta = changes(current, new)
    assert delta.close == [row(2, b"").valid_from, row(3, b"").valid_from]
    assert delta.insert == [row(2, b"B"), row(5, b"e")]


def test_changes_of_nothing_and_to_nothing() -> None:
    """A first timeline inserts every row and closes none; an emptied timeline (all its
    claims retracted) closes every row, in valid-time order, and inserts none."""
    rows = [row(3, b"c"), row(1, b"a"), row(2, b"b")]
    assert changes({}, rows) == Changes(close=[], insert=rows)
    current = as_current(rows)
    assert changes(current, []) == Changes(close=sorted(current), insert=[])
    assert changes(current, sorted(rows, key=lambda r: r.valid_from)) == Changes([], [])


@SETTINGS
@given(logs(), st.data())
def test_changes_between_successive_timelines(events: list[Event], data: st.DataObject) -> None:
    """Between the timeline of a log prefix and that of a longer prefix (one commit's
    effect), ``changes`` touches exactly the rows that differ and leaves the rest alone."""
    cut = data.draw(st.integers(0, len(events)))
    check_changes(as_current(rows_for(events[:cut])), rows_for(events))


@SETTINGS
@given(logs(max_events=10), logs(max_events=10))
def test_changes_between_unrelated_timelines(first: list[Event], second: list[Event]) -> None:
    """Between any two timelines of a place, ``changes`` is exact too."""
    check_changes(as_current(rows_for(first)), rows_for(second))


@SETTINGS
@given(
    st.dictionaries(st.integers(0, 12), st.sampled_from([b"a", b"b", b"c"])),
    st.dictionaries(st.integers(0, 12), st.sampled_from([b"a", b"b", b"c"])),
)
def test_changes_over_arbitrary_row_sets(current: dict[int, bytes], new: dict[int, bytes]) -> None:
    """Over synthetic rows sharing valid_from and bodies in every combination, ``changes``
    is exact (equal bodies at the same valid_from stay, anything else is replaced)."""
    check_changes(
        {row(day, body).valid_from: body for day, body in current.items()},
        [row(day, body) for day, body in sorted(new.items())],
    )


# --------------------------------------------------------------------------------------------
# history()


@SETTINGS
@given(committed_logs())
def test_history_is_exact_at_every_commit(commits: list[tuple[int, list[Event]]]) -> None:
    """Known ranges of rows at the same valid_from never overlap; at every commit c (and at
    every position between commits) the rows known there are exactly the rows of the
    projection of the events committed up to c; before the first commit nothing is known."""
    rows = history(PLACE, [(c, list(added)) for c, added in commits], CREDIBILITY_V2)
    positions = {c for c, _ in commits}
    for h in rows:
        assert h.known_from in positions
        assert h.known_to is None or (h.known_to in positions and h.known_to > h.known_from)
    by_start: dict[datetime, list[HistoryRow]] = {}
    for h in rows:
        by_start.setdefault(h.row.valid_from, []).append(h)
    for same in by_start.values():
        same.sort(key=lambda h: h.known_from)
        for earlier, later in itertools.pairwise(same):
            assert earlier.known_to is not None
            assert earlier.known_to <= later.known_from
    events: list[Event] = []
    first = commits[0][0]
    assert known_at(rows, first - 1) == []
    for index, (commit, added) in enumerate(commits):
        events.extend(added)
        expected = rows_for(events)
        following = commits[index + 1][0] if index + 1 < len(commits) else commit + 3
        for position in range(commit, following):
            assert known_at(rows, position) == expected, f"known at {position}"
    open_rows = sorted((h.row for h in rows if h.known_to is None), key=lambda r: r.valid_from)
    assert open_rows == rows_for(events)


@SETTINGS
@given(committed_logs())
def test_history_keeps_unchanged_rows_from_their_first_commit(
    commits: list[tuple[int, list[Event]]],
) -> None:
    """A row that a commit leaves unchanged is not reissued: no two rows of a history hold
    the same body with adjacent known ranges (closed at c, reopened at c)."""
    rows = history(PLACE, commits, CREDIBILITY_V2)
    closed_at = {(h.row.body, h.known_to) for h in rows if h.known_to is not None}
    assert all((h.row.body, h.known_from) not in closed_at for h in rows)
