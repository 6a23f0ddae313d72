"""Merges of places in the registry, pure (``service.domain.registry``,
``service.domain.bitemporal``): which place's timeline each stream's events belong to as
known at a position, the checks that keep merges one level deep, and a replay of a place
a merge joined with others."""

from __future__ import annotations

import uuid

import pytest

from contracts.events import PlaceMerged, PlaceMergeRetracted
from service.domain.bitemporal import PlaceReplay, history, rows_of, stream_commits
from service.domain.errors import InvalidEvent
from service.domain.policy import SERVED
from service.domain.projection import Fact, PlaceFold
from service.domain.records import prepare_merge
from service.domain.registry import (
    EMPTY,
    PLACE_MARK,
    MergeRefused,
    RegistryHistory,
    RegistryRow,
    SideRegistry,
)
from tests.unit.builders import GOV, ISIS, capture, control, source, uid

A, B, C, D = "sy-a", "sy-b", "sy-c", "sy-d"
M1, M2 = uuid.UUID(int=901), uuid.UUID(int=902)


def merged(place: str, into: str, event_id: uuid.UUID = M1) -> PlaceMerged:
    """``place`` merged into ``into``."""
    return PlaceMerged(id=event_id, place=into, merged=place)


def stated(*events: PlaceMerged | PlaceMergeRetracted) -> SideRegistry:
    """The registry those events state, in order (one position each)."""
    found = EMPTY
    for position, event in enumerate(events, start=1):
        found = found.stated(event, version=position, position=position, submitter=None)
    return found


def test_a_merge_maps_the_merged_place_to_the_surviving_one_until_its_retraction() -> None:
    """After a merge the merged place's events belong to the surviving place's timeline,
    which reads both streams; the retraction gives each its own again; the merged place's
    stream counts its versions across both."""
    joined = stated(merged(B, A))
    assert (joined.place_of(B), joined.place_of(A), joined.place_of(C)) == (A, A, C)
    assert joined.timeline_streams(A) == (A, B)
    assert joined.timeline_streams(B) == ()
    undone = joined.stated(
        PlaceMergeRetracted(retracts=M1, place=A, merged=B), version=2, position=2, submitter=None
    )
    assert (undone.place_of(B), undone.timeline_streams(A)) == (B, (A,))
    assert undone.place_streams == {B: 2}
    assert EMPTY.merges_changed(joined) == {A, B}
    assert PLACE_MARK + B in EMPTY.remapped(joined)
    assert joined.merges_changed(undone) == {A, B}
    assert joined.merges_changed(joined) == frozenset()


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (merged(B, C), "merged"),  # B is merged already
        (merged(C, B), "place"),  # into a merged place: a chain
        (merged(A, C), "merged"),  # A has B merged into it: a chain
        (PlaceMergeRetracted(retracts=M1, place=C, merged=B), "merged"),  # not into C
        (PlaceMergeRetracted(retracts=M2, place=A, merged=B), "retracts"),  # another merge
        (PlaceMergeRetracted(retracts=M1, place=A, merged=C), "merged"),  # C never merged
    ],
)
def test_merges_that_chain_loop_or_repeat_are_refused_naming_the_field(
    event: PlaceMerged | PlaceMergeRetracted, field: str
) -> None:
    """With B merged into A: merging B again, merging into B, merging A (which B is merged
    into), or retracting a merge that is not the one in force, is a MergeRefused (409)
    naming the field."""
    with pytest.raises(MergeRefused) as refused:
        stated(merged(B, A)).check(event, "events[0].")
    assert refused.value.field == "events[0]." + field


def test_a_place_merged_into_itself_is_invalid() -> None:
    """A merge of a place into itself is refused when prepared and when checked (422)."""
    with pytest.raises(InvalidEvent) as invalid:
        prepare_merge(merged(A, A))
    assert invalid.value.field == "merged"
    with pytest.raises(InvalidEvent):
        EMPTY.check(merged(A, A))


def test_clusters_join_every_place_a_merge_ever_joined() -> None:
    """B merged into A, unmerged, then merged into C: A, B and C are one cluster (a replay
    of any of them reads all three streams); D, never merged, is in none."""
    rows = [
        RegistryRow(1, 1, 1, None, merged(B, A)),
        RegistryRow(2, 2, 2, None, PlaceMergeRetracted(retracts=M1, place=A, merged=B)),
        RegistryRow(3, 3, 3, None, merged(B, C, M2)),
    ]
    clusters = RegistryHistory(rows).clusters()
    assert clusters == {A: {A, B, C}, B: {A, B, C}, C: {A, B, C}}
    assert RegistryHistory(rows).clusters(upto=2) == {A: {A, B}, B: {A, B}}


def test_a_replay_of_joined_streams_folds_the_merged_events_from_the_merge_on() -> None:
    """The surviving place's replay, given both streams' events: before the merge, its own
    events only; at the merge (position 3), both places' events, as one fold of all of them
    gives; at the unmerge (position 5), its own again. The merged place's replay has no
    open rows while the merge is in force."""
    own = control(GOV, place=A, on="2017-06-01", by=source("Reuters", "B"), id=uid(1))
    other = capture(ISIS, place=B, on="2017-06-03", by=source("Amaq", "D", ISIS), id=uid(2))
    registry = RegistryHistory(
        [
            RegistryRow(3, 3, 1, None, merged(B, A)),
            RegistryRow(5, 5, 2, None, PlaceMergeRetracted(retracts=M1, place=A, merged=B)),
        ]
    )
    log = stream_commits([(A, 1, own), (B, 2, other)])
    rows = history(A, log, SERVED, registry, upto=5)
    at = {h.known_from for h in rows} | {h.known_to for h in rows if h.known_to is not None}
    assert at == {1, 3, 5}

    def open_at(position: int) -> list[bytes]:
        return sorted(
            h.row.body
            for h in rows
            if h.known_from <= position and (h.known_to is None or h.known_to > position)
        )

    both = PlaceFold(SERVED)
    both.add([Fact.of(own), Fact.of(other)])
    alone = PlaceFold(SERVED)
    alone.add([Fact.of(own)])
    assert open_at(3) == sorted(r.body for r in rows_of(A, both.timeline()))
    assert open_at(2) == open_at(5) == sorted(r.body for r in rows_of(A, alone.timeline()))

    gone = PlaceReplay(B, SERVED, registry)
    list(gone.advance(log, upto=4))
    assert gone.open_rows() == []
