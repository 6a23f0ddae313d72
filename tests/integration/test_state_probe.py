"""The state probe (``read_state.sql``, ``read_state_in_box.sql``, migration 0006) answers
exactly what the bitemporal definition says, and uses its B-tree.

A place's answer at valid time V as known at position K is the row whose valid interval
holds V and whose known interval holds K, when there is one (DESIGN 5). The probe reads the
latest row starting at or before V among those known at K instead; these tests hold the two
equal on histories written as the projector writes them (rows closed and opened commit by
commit, unchanged rows kept across commits, gaps in valid time), for every filter, under
the custom and the generic plan, and check the plan.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg
import pytest

from service.projections.queries import SQL

FIRST: Final = datetime(2015, 1, 1, tzinfo=UTC)
DAYS: Final = 400
SIDES: Final = ("sy-gov", "isis", "sdf")
STATUSES: Final = ("controlled", "contested", "besieged")
MODES: Final = ("force_custom_plan", "force_generic_plan")


@dataclass(frozen=True)
class Row:
    place_id: str
    valid_from: datetime
    valid_to: datetime | None
    known_from: int
    known_to: int | None
    controller: str | None
    status: str
    disputed: bool
    body: str


def _timeline(rng: random.Random, place: str) -> list[tuple[Any, ...]]:
    """A random timeline: (valid_from, valid_to, controller, status, disputed), with gaps."""
    count = rng.randint(1, 6)
    days = sorted(rng.sample(range(DAYS), count * 2))
    segments = []
    for index in range(count):
        start = FIRST + timedelta(days=days[2 * index])
        if index + 1 == count and rng.random() < 0.6:
            end = None
        elif rng.random() < 0.7 and index + 1 < count:
            end = FIRST + timedelta(days=days[2 * index + 2])  # contiguous
        else:
            end = FIRST + timedelta(days=days[2 * index + 1])  # a gap after it
        controller = rng.choice((*SIDES, None))
        segments.append((start, end, controller, rng.choice(STATUSES), rng.random() < 0.2))
    return segments


def histories(places: int, commits: int, seed: int) -> list[Row]:
    """Rows as the projector writes them: at each commit that touches a place, its rows that
    differ from the new timeline are closed and the new ones inserted; equal ones stay."""
    rng = random.Random(seed)
    rows: list[Row] = []
    current: dict[str, dict[tuple[Any, ...], int]] = {f"sy-q{n:04d}": {} for n in range(places)}
    for position in range(1, commits + 1):
        for place in rng.sample(sorted(current), k=max(1, places // 5)):
            open_rows = current[place]
            # Rows wholly before a cut are kept, as a claim later in time leaves them.
            cut = FIRST + timedelta(days=rng.randrange(DAYS))
            kept = [s for s in open_rows if s[1] is not None and s[1] <= cut]
            new = kept + [s for s in _timeline(rng, place) if s[0] >= cut]
            for segment, known_from in list(open_rows.items()):
                if segment not in new:
                    rows.append(_row(place, segment, known_from, position))
                    del open_rows[segment]
            for segment in new:
                open_rows.setdefault(segment, position)
    for place, open_rows in current.items():
        rows.extend(_row(place, segment, known, None) for segment, known in open_rows.items())
    return rows


def _row(place: str, segment: tuple[Any, ...], known_from: int, known_to: int | None) -> Row:
    start, end, controller, status, disputed = segment
    body = json.dumps(
        {"place": place, "from": start.isoformat(), "known_from": known_from, "c": controller}
    )
    return Row(place, start, end, known_from, known_to, controller, status, disputed, body)


def expected(
    rows: list[Row], valid: datetime, known: int, filters: tuple[Any, Any, Any]
) -> dict[str, str]:
    """The definition: the row holding ``valid`` in its valid interval and ``known`` in its
    known interval, if it passes the filters; place: body."""
    side, status, disputed = filters
    found: dict[str, str] = {}
    for row in rows:
        if not (row.valid_from <= valid and (row.valid_to is None or valid < row.valid_to)):
            continue
        if not (row.known_from <= known and (row.known_to is None or known < row.known_to)):
            continue
        assert row.place_id not in found, "two rows known at one position overlap"
        if side is not None and row.controller != side:
            continue
        if status is not None and row.status != status:
            continue
        if disputed is not None and row.disputed != disputed:
            continue
        found[row.place_id] = row.body
    return found


async def _fill(owner: asyncpg.Connection, rows: list[Row]) -> None:
    places = sorted({row.place_id for row in rows})
    await owner.copy_records_to_table(
        "places",
        records=[
            (place, place, "village", 35.0 + i % 10 / 10, 37.0 + i // 10 / 10, [], 1, 1, 1)
            for i, place in enumerate(places)
        ],
        columns=("id", "name", "kind", "lat", "lon", "aliases", "version", "first_position",
                 "last_position"),
    )  # fmt: skip
    await owner.copy_records_to_table(
        "segments",
        records=[
            (r.place_id, r.valid_from, r.valid_to, r.known_from, r.known_to, r.controller,
             r.status, None, r.disputed, 50, "assessed", r.body)
            for r in rows
        ],
        columns=("place_id", "valid_from", "valid_to", "known_from", "known_to", "controller",
                 "status", "status_by", "disputed", "confidence", "basis", "body"),
    )  # fmt: skip
    await owner.execute("ANALYZE places; ANALYZE segments")


@pytest.mark.parametrize("mode", MODES)
async def test_the_probe_answers_the_bitemporal_definition(
    owner: asyncpg.Connection, mode: str
) -> None:
    """On 60 places over 40 commits (rows closed, kept and opened as the projector does,
    gaps in valid time), every page of read_state.sql and of read_state_in_box.sql equals
    the definition, at 30 random (valid time, known position) pairs and every filter."""
    rows = histories(places=60, commits=40, seed=5)
    await _fill(owner, rows)
    await owner.execute(f"SET plan_cache_mode = {mode}")
    whole = await owner.prepare(SQL.read_state)
    boxed = await owner.prepare(SQL.read_state_in_box)
    rng = random.Random(7)
    filters: list[tuple[Any, Any, Any]] = [
        (None, None, None), ("isis", None, None), (None, "contested", None), (None, None, True),
    ]  # fmt: skip
    for _ in range(30):
        valid = FIRST + timedelta(days=rng.uniform(-5, DAYS + 5))
        known = rng.randint(0, 42)
        for chosen in filters:
            want = expected(rows, valid, known, chosen)
            got = {r["id"]: r["body"] for r in await whole.fetch(valid, known, *chosen, "", 1000)}
            assert got == want, (valid, known, chosen)
            page = await whole.fetch(valid, known, *chosen, "", 5)
            assert [r["id"] for r in page] == sorted(want)[:5]
            in_box = await boxed.fetch(valid, known, 37.0, 35.0, 37.45, 35.95, *chosen, "", 1000)
            box_want = {
                place: body
                for place, body in want.items()
                if int(place[4:]) // 10 <= 4  # lon 37.0-37.4 (lat 35.0-35.9: every place)
            }
            assert {r["id"]: r["body"] for r in in_box} == box_want, (valid, known, chosen)


async def test_the_probe_uses_the_btree_one_entry_a_place(owner: asyncpg.Connection) -> None:
    """The plan probes segments_place_valid once per place (not the GiST of 0003, not a
    scan of segments), stopping at the first row known at the position."""
    rows = histories(places=200, commits=60, seed=9)
    await _fill(owner, rows)
    plan = await owner.fetchval(
        "EXPLAIN (FORMAT JSON) " + SQL.read_state,
        FIRST + timedelta(days=200), 30, None, None, None, "", 100,
    )  # fmt: skip
    reads = [node for node in _nodes(json.loads(plan)[0]["Plan"]) if "Relation Name" in node]
    segments = [node for node in reads if node["Relation Name"] == "segments"]
    assert segments
    assert all(node.get("Index Name") == "segments_place_valid" for node in segments), segments


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", ()) for n in _nodes(child))]
