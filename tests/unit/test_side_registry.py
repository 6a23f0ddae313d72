"""The side registry, pure (``service.domain.registry``): one lookup from a name to its side,
the checks that keep one name one side, and the history a rebuild reads claims through."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import Event, SideRegistered, SourceRegistered
from service.domain.bitemporal import history, rows_of
from service.domain.errors import InvalidEvent
from service.domain.policy import SERVED
from service.domain.projection import Fact, PlaceFold
from service.domain.projection.status import status_of
from service.domain.registry import (
    EMPTY,
    AliasTaken,
    RegistryHistory,
    RegistryRow,
    SideRegistry,
    canonical_side,
)
from tests.unit.builders import GOV, ISIS, PLACE, capture, clash, control, source, uid
from tests.unit.test_rebuild import commits

SDF = "sdf"
US = "us-coalition"


def side(name: str, *aliases: str, **fields: Any) -> SideRegistered:
    """A ``side_registered`` event of ``name`` with these aliases."""
    return SideRegistered(side=name, name=name.title(), aliases=aliases, **fields)


def registry(*events: SideRegistered) -> SideRegistry:
    """The registry those events state, in order."""
    found = EMPTY
    for position, event in enumerate(events, start=1):
        found = found.stated(event, version=1, position=position, submitter=None)
    return found


def test_an_alias_reads_as_its_side_in_side_opponent_and_alignment() -> None:
    """A fact's side, opponent and source alignment go through the registry; a name no side
    registers stands for itself; a fact no alias touches comes back as the same object."""
    sides = registry(side(GOV, "government-of-syria"), side(ISIS, "is"))
    fact = Fact.of(
        capture(
            "government-of-syria",
            opponent="is",
            by=source("SANA", "C", "government-of-syria"),
            id=uid(1),
        )
    )
    read = sides.canonical_fact(fact)
    assert (read.side, read.opponent, read.alignment) == (GOV, ISIS, GOV)
    plain = Fact.of(capture(SDF, opponent=US, id=uid(2)))
    assert sides.canonical_fact(plain) is plain
    assert canonical_side(sides, "is") == ISIS
    assert canonical_side(sides, "nobody") == "nobody"


def test_one_name_means_one_side() -> None:
    """An alias another side holds, another side's id as an alias, or a side id that is
    another side's alias is AliasTaken naming the field; a reserved name, the side's own id
    as an alias or a repeated alias is InvalidEvent; restating a side's own aliases is fine."""
    sides = registry(side(GOV, "government-of-syria"), side(ISIS, "is"))
    with pytest.raises(AliasTaken) as taken:
        sides.check(side(SDF, "x", "is"))
    assert (taken.value.field, taken.value.owner) == ("aliases[1]", ISIS)
    with pytest.raises(AliasTaken) as taken:
        sides.check(side(SDF, GOV))
    assert taken.value.field == "aliases[0]"
    with pytest.raises(AliasTaken) as taken:
        sides.check(side("is"), "events[2].")
    assert taken.value.field == "events[2].side"
    for bad, field in (
        (side("neutral"), "side"),
        (side(SDF, "neutral"), "aliases[0]"),
        (side(SDF, SDF), "aliases[0]"),
        (side(SDF, "a", "a"), "aliases[1]"),
    ):
        with pytest.raises(InvalidEvent) as invalid:
            sides.check(bad)
        assert invalid.value.field == field
    sides.check(side(GOV, "government-of-syria", "syrian-arab-army"))


def test_remapped_names_are_those_an_edit_adds_or_removes() -> None:
    """An alias added or removed is remapped; a new side with no alias remaps nothing."""
    before = registry(side(GOV, "government-of-syria"), side(ISIS, "is"))
    after = registry(side(GOV, "syrian-arab-army"), side(ISIS, "is"), side(SDF))
    assert before.remapped(after) == {"government-of-syria", "syrian-arab-army"}
    assert before.remapped(before) == frozenset()


def test_the_history_answers_the_registry_as_known_at_any_position() -> None:
    """The registry as known at a position is what the commits up to it stated; the changes
    between two positions name what each commit remapped."""
    rows = [
        RegistryRow(3, 3, 1, "editor", side(GOV, "government-of-syria")),
        RegistryRow(7, 8, 2, "editor", side(GOV)),
        RegistryRow(8, 8, 1, None, side(ISIS, "is")),
    ]
    found = RegistryHistory(rows)
    assert found.at(2) is EMPTY
    assert found.at(3).canonical("government-of-syria") == GOV
    assert found.at(7).canonical("government-of-syria") == GOV  # its commit ends at 8
    assert found.at(8).canonical("government-of-syria") == "government-of-syria"
    assert found.at(8).entries[GOV].version == 2
    assert [(c.commit, c.remapped) for c in found.between(3, 100)] == [
        (8, frozenset({"government-of-syria", "is"}))
    ]


def test_no_side_contests_itself() -> None:
    """A clash whose side and opponent are one side contests nothing; a clash by the
    controller against a named opponent is contested by the opponent."""
    uid_ = uid(1)
    end = Fact.of(clash(GOV, id=uid_)).end
    assert status_of(GOV, [(end, GOV, GOV, uid_)], []) == ("controlled", None, ())
    assert status_of(GOV, [(end, GOV, ISIS, uid_)], [])[:2] == ("contested", ISIS)


@st.composite
def registry_changes(draw: st.DrawFn) -> list[RegistryRow]:
    """Registry commits at positions among the events': aliases of the tests' sides added
    and removed (sdf and the coalition may become names of the government or of isis), and
    sources re-graded, realigned (with sdf too, which an alias may make another side's name)
    and aliased (Alpha or Bravo may take Charlie's name)."""
    rows: list[RegistryRow] = []
    versions: dict[str, int] = {}
    for position in sorted(draw(st.sets(st.integers(1, 10_000), max_size=5))):
        event: SideRegistered | SourceRegistered
        if draw(st.booleans()):
            owner = draw(st.sampled_from((GOV, ISIS)))
            aliases = draw(st.sets(st.sampled_from((SDF, US)), max_size=2))
            sides = {r.event.side: r.event for r in rows if isinstance(r.event, SideRegistered)}
            taken = {a for s, e in sides.items() if s != owner for a in e.aliases}
            event = side(owner, *sorted(aliases - taken))
            stream = "side:" + owner
        else:
            owner = draw(st.sampled_from(("Alpha", "Bravo")))
            named = {r.event.source: r.event for r in rows if isinstance(r.event, SourceRegistered)}
            taken = {a for s, e in named.items() if s != owner for a in e.aliases}
            aliases = draw(st.sets(st.sampled_from(("Charlie",)), max_size=1)) - taken
            event = SourceRegistered(
                source=owner,
                reliability=draw(st.sampled_from("ABCDEF")),
                alignment=draw(st.sampled_from(("neutral", GOV, ISIS, SDF))),
                aliases=tuple(sorted(aliases)),
            )
            stream = "source:" + owner
        versions[stream] = versions.get(stream, 0) + 1
        rows.append(RegistryRow(position, position, versions[stream], None, event))
    return rows


def _open_at(rows: list[Any], position: int) -> list[Any]:
    return sorted(
        (
            h.row
            for h in rows
            if h.known_from <= position and (h.known_to is None or position < h.known_to)
        ),
        key=lambda row: row.valid_from,
    )


@settings(max_examples=150, deadline=None)
@given(log=commits(), changes=registry_changes())
def test_rows_known_at_k_are_the_fold_through_the_registry_as_known_at_k(
    log: list[tuple[int, list[Event]]], changes: list[RegistryRow]
) -> None:
    """Replayed commit by commit with registry commits in between (side aliases added and
    removed, sources re-graded and aliased, some in the same commit as events), the rows
    known at every position K are the timeline of the events up to K, each read through the
    registry as known at K."""
    registries = RegistryHistory(changes)
    rows = history(PLACE, log, SERVED, registries, upto=10_001)
    positions = sorted({c for c, _ in log} | {r.commit_position for r in changes} | {10_001})
    for position in positions:
        sides = registries.at(position)
        known = [e for c, events in log if c <= position for e in events]
        fold = PlaceFold(SERVED)
        fold.add([sides.canonical_fact(Fact.of(e)) for e in known])
        assert _open_at(rows, position) == rows_of(PLACE, fold.timeline()), position


def test_an_alias_added_later_refolds_earlier_claims_from_its_position() -> None:
    """Two control claims under two names of the government: before the alias, two sides
    in dispute; from the alias's commit on, one side, undisputed, with the old rows closed
    at that commit."""
    log: list[tuple[int, list[Event]]] = [
        (1, [control(GOV, on="2017-06-01", by=source("Alpha", "B"), id=uid(1))]),
        (2, [control("government-of-syria", on="2017-06-05", by=source("Bravo", "B"), id=uid(2))]),
    ]
    changes = RegistryHistory([RegistryRow(3, 3, 1, None, side(GOV, "government-of-syria"))])
    rows = history(PLACE, log, SERVED, changes, upto=3)
    assert any(r.row.disputed for r in _rows_open(rows, 2))
    assert not any(r.row.disputed for r in _rows_open(rows, 3))
    assert all(h.known_to == 3 for h in _rows_open(rows, 2) if h.row.disputed)


def _rows_open(rows: list[Any], position: int) -> list[Any]:
    return [
        h
        for h in rows
        if h.known_from <= position and (h.known_to is None or position < h.known_to)
    ]


def test_a_side_alias_reaches_the_sources_aligned_with_it() -> None:
    """Alpha is registered as aligned with sdf; later sdf becomes a name of the government:
    Alpha's claim for the government turns self-serving at that commit (its confidence
    halves), though no event names sdf."""
    log: list[tuple[int, list[Event]]] = [
        (1, [control(GOV, on="2017-06-01", by=source("Alpha", "B"), id=uid(1))])
    ]
    changes = RegistryHistory(
        [
            RegistryRow(
                2, 2, 1, None, SourceRegistered(source="Alpha", reliability="B", alignment=SDF)
            ),
            RegistryRow(3, 3, 1, None, side(GOV, SDF)),
        ]
    )
    rows = history(PLACE, log, SERVED, changes, upto=3)
    assert [h.row.confidence for h in _rows_open(rows, 2)] == [38]
    assert [h.row.confidence for h in _rows_open(rows, 3)] == [19]
