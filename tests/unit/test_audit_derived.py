"""The pure checks of what verify compares besides the chain, without a database:
``event_links`` rows against the links payloads state, projection rows against a refold,
and the weighted sample of places whose rows a default verify refolds."""

from __future__ import annotations

import collections
import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from contracts.events import Event
from service.domain.audit import (
    LinkRow,
    LinkVerifier,
    StoredSegment,
    check_place,
    compare_place,
    sample_places,
    stated_links,
)
from service.domain.bitemporal import HistoryRow, history
from service.domain.policy import SERVED
from tests.unit.builders import GOV, ISIS, capture, control, denial, link, source, statement, uid

PLACE = "sy-maskanah"
A, B, C = uid(1), uid(2), uid(3)


# --- links ------------------------------------------------------------------------------------


def test_links_that_agree_count_and_pass() -> None:
    """Rows equal to the payload's links, in any order, pass and are counted."""
    links = LinkVerifier()
    rows = [LinkRow(4, B, C, "denies"), LinkRow(4, B, A, "confirms")]
    assert links.check(4, B, [(A, "confirms"), (C, "denies")], rows) is None
    assert links.check(5, C, [], []) is None
    assert (links.checked, links.rows) == (2, 2)


def test_an_extra_row_is_named_before_a_lacking_one() -> None:
    """A row the payload does not state (what a forgery adds) is named first, with its
    relation and target; then a link the table lacks."""
    links = LinkVerifier()
    forged = links.check(2, B, [(C, "denies")], [LinkRow(2, B, A, "retracts")])
    assert forged is not None
    assert (forged.position, forged.id, forged.target, forged.relation) == (2, B, A, "retracts")
    assert "payload does not say so" in forged.reason
    lacking = links.check(2, B, [(C, "denies")], [])
    assert lacking is not None
    assert (lacking.target, lacking.relation) == (C, "denies")
    assert "no such row" in lacking.reason
    assert links.checked == 0


def test_a_row_of_another_event_at_a_position_is_named() -> None:
    """A row whose id is not the event at its position (moved, or made up) is named."""
    mismatch = LinkVerifier().check(3, C, [], [LinkRow(3, A, B, "denies")])
    assert mismatch is not None
    assert mismatch.id == A
    assert f"the event at position 3 is {C}" in mismatch.reason
    stray = LinkVerifier.stray(LinkRow(40, A, B, "denies"), 7)
    assert stray.position == 40
    assert "positions are 1..7" in stray.reason


def test_stated_links_reads_a_payloads_relates_to() -> None:
    """The links a payload states, as (event, relation); none when it has no relates_to."""
    said = statement(link(A, "denies"), link(B, "retracts"), id=3)
    assert stated_links(msgspec.json.encode(said)) == {(A, "denies"), (B, "retracts")}
    assert stated_links(msgspec.json.encode(capture(GOV, id=4))) == frozenset()


# --- projection rows --------------------------------------------------------------------------


def refold(commits: Sequence[Sequence[Event]]) -> list[HistoryRow]:
    """Every row the place had, one commit per element, at positions 1, 2, ..."""
    return history(PLACE, [(n, list(c)) for n, c in enumerate(commits, start=1)], SERVED)


def stored(rows: Sequence[HistoryRow]) -> list[StoredSegment]:
    """The rows as the table would hold them."""
    return [
        StoredSegment(
            valid_from=h.row.valid_from,
            valid_to=h.row.valid_to,
            known_from=h.known_from,
            known_to=h.known_to,
            controller=h.row.controller,
            status=h.row.status,
            status_by=h.row.status_by,
            disputed=h.row.disputed,
            confidence=h.row.confidence,
            basis=h.row.basis,
            body=h.row.body,
        )
        for h in rows
    ]


def commits() -> list[list[Event]]:
    """Three commits about one place: isis holds, gov captures, SOHR denies the capture."""
    taken = capture(GOV, id=2, on="2017-06-03")
    return [
        [control(ISIS, id=1, on="2017-06-02")],
        [taken],
        [denial(taken, source("SOHR", reliability="B"), id=3, on="2017-06-03")],
    ]


def test_the_rows_of_a_refold_equal_themselves() -> None:
    """Rows written as the refold makes them compare equal, in any order; check_place does
    the refold from the payloads itself."""
    expected = refold(commits())
    assert len(expected) > 3
    assert compare_place(PLACE, expected, list(reversed(stored(expected)))) is None
    payloads = [(n, msgspec.json.encode(e).decode()) for n, c in enumerate(commits(), 1) for e in c]
    assert check_place(PLACE, payloads, stored(expected), SERVED) is None


def test_an_edited_body_names_the_row_and_the_field() -> None:
    """A body whose controller was changed is named by its place, valid start, known range
    and field, with both values."""
    expected = refold(commits())
    rows = stored(expected)
    target = next(i for i, r in enumerate(rows) if r.controller == ISIS)
    body = rows[target].body.replace(b'"controller":"isis"', b'"controller":"mallory-side"')
    rows[target] = dataclasses.replace(rows[target], body=body)
    found = compare_place(PLACE, expected, rows)
    assert found is not None
    edited = rows[target]
    assert (found.place, found.valid_from, found.known_from, found.known_to) == (
        PLACE,
        edited.valid_from,
        edited.known_from,
        edited.known_to,
    )
    assert found.reason == 'body.controller is "mallory-side"; the refold says "isis"'


def test_each_kind_of_difference_is_named() -> None:
    """A column, a known range, a missing row, an extra row and a repeated row."""
    expected = refold(commits())
    rows = stored(expected)
    cases = {
        "column confidence is 99": [dataclasses.replace(rows[0], confidence=99), *rows[1:]],
        "column known_to is 7": [dataclasses.replace(rows[0], known_to=7), *rows[1:]],
        "segments lacks this row": rows[1:],
        "segments holds a row the refold does not make": [
            *rows,
            dataclasses.replace(rows[0], valid_from=datetime(2016, 1, 1, tzinfo=UTC)),
        ],
        "two rows for this valid and known start": [*rows, rows[-1]],
    }
    for words, altered in cases.items():
        found = compare_place(PLACE, expected, altered)
        assert found is not None, words
        assert words in found.reason, (words, found.reason)


def test_a_place_whose_payloads_cannot_be_refolded_is_named() -> None:
    """A payload that is not an event (only a tampered log holds one) is a difference."""
    found = check_place(PLACE, [(1, '{"type": "capture"}')], [], SERVED)
    assert found is not None
    assert (found.place, found.valid_from) == (PLACE, None)
    assert "cannot be refolded" in found.reason


# --- the sample -------------------------------------------------------------------------------


def test_a_sample_stays_within_its_budget_and_never_takes_a_larger_place() -> None:
    """The places picked hold at most the budget's events together; a place larger than
    the budget is never picked; with a budget over the whole log every place is."""
    counts = [(f"p{i}", i) for i in range(1, 40)]
    for _ in range(50):
        chosen = sample_places(counts, 30)
        sizes = dict(counts)
        assert sum(sizes[p] for p in chosen) <= 30
        assert all(sizes[p] <= 30 for p in chosen)
        assert len(set(chosen)) == len(chosen)
    assert sorted(sample_places(counts, 10_000)) == sorted(p for p, _ in counts)
    assert sample_places(counts, 0) == []


def test_a_sample_gives_each_event_about_the_same_chance() -> None:
    """Places are drawn with a chance in proportion to their events, so the rows of a busy
    place are checked about as often as those of small ones (a uniform draw of places would
    reach the busy place in 1 draw of 11 here, against about 1 of 2)."""
    counts = [("busy", 50)] + [(f"small{i}", 5) for i in range(10)]
    picked: collections.Counter[str] = collections.Counter()
    draws = 2000
    for _ in range(draws):
        picked.update(sample_places(counts, 50))
    busy = picked["busy"] / draws
    small = sum(picked[f"small{i}"] for i in range(10)) / (10 * draws)
    assert 0.35 < busy < 0.65, busy
    assert 0.35 < small < 0.65, small


def test_ids_in_the_checks_are_uuids() -> None:
    """Link rows carry UUIDs as the table stores them (comparisons are by value)."""
    assert LinkRow(1, A, B, "denies") == LinkRow(1, uuid.UUID(str(A)), B, "denies")
