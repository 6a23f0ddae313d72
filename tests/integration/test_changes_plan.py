"""The plan of ``read_state_changes.sql`` (the short form of ``python -m bench.changes``): a
page visits places in id order and stops when it is full, under the custom plan and under the
generic plan a cached prepared statement ends up with; a place filter probes one place."""

from __future__ import annotations

import asyncpg
import pytest

from bench.changes import fill, measure, questions

MODES = ("force_custom_plan", "force_generic_plan")


@pytest.mark.parametrize("mode", MODES)
async def test_a_full_page_stops_early_and_a_place_is_one_probe(
    owner: asyncpg.Connection, mode: str
) -> None:
    """On 8,000 synthetic segments over 2,000 places: all of time, every place, fills its page
    of 500 after probing far fewer than all places; the busiest place alone, from the start or
    from a cursor inside it, is one probe; a quiet week probes every place (the price of a
    range where little changed) and finds what the custom plan finds."""
    table = await fill(owner, places=2000, rows=8000)
    asked = questions(table)
    dense = await measure(owner, mode, asked["all of time, every place"], repeat=1)
    assert dense["rows"] == 500
    assert dense["places_probed"] < table.places // 4
    for question in ("all of time, the busiest place", "the busiest place, a cursor inside it"):
        one = await measure(owner, mode, asked[question], repeat=1)
        assert (one["places_probed"], one["rows"] > 0) == (1, True), question
    quiet = await measure(owner, mode, asked["a quiet week, every place"], repeat=1)
    assert quiet["places_probed"] == table.places
    custom = await measure(owner, MODES[0], asked["a quiet week, every place"], repeat=1)
    assert quiet["rows"] == custom["rows"]
