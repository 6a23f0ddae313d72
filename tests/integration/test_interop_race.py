"""Two imports at the same time (service/usecases/ingest.py): each reads the place registry
before writing, so both may pick the same new id for two different same-named places. The
second to commit must find out (an expectation that the place stream is new) and resolve its
rows again, never merge the two places."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from service.interop import plover
from service.interop.rows import SourceRow
from service.store.events import EventStore
from service.usecases.ingest import import_rows

#: Two places named "Al Mansurah" about 200 km apart: near Raqqa and near Hama.
RAQQA = (35.83, 38.76)
HAMA = (35.02, 36.60)


def _rows(prefix: str, point: tuple[float, float], count: int) -> list[SourceRow]:
    """``count`` PLOVER records (ids ``prefix-n``) of clashes at Al Mansurah at ``point``."""
    records: list[dict[str, Any]] = [
        {
            "id": f"{prefix}-{n}",
            "date": "2017-06-03",
            "event": "ASSAULT",
            "mode": "firearms",
            "actor": "Syrian Arab Army",
            "location": {"name": "Al Mansurah", "lat": point[0], "lon": point[1]},
        }
        for n in range(count)
    ]
    return list(plover.read("\n".join(json.dumps(r) for r in records).encode()))


async def _places(owner: asyncpg.Connection) -> dict[str, set[tuple[float, float]]]:
    """Each place id with the points its events were imported with."""
    rows = await owner.fetch(
        "SELECT place_id, (payload::jsonb->'place'->>'lat')::float8 AS lat,"
        " (payload::jsonb->'place'->>'lon')::float8 AS lon FROM events"
    )
    found: dict[str, set[tuple[float, float]]] = {}
    for r in rows:
        found.setdefault(r["place_id"], set()).add((r["lat"], r["lon"]))
    return found


async def test_two_imports_at_once_never_merge_two_same_named_places(
    store: EventStore, owner: asyncpg.Connection
) -> None:
    """Both imports read an empty registry and would register "al-mansurah"; one wins it,
    the other's rows resolve again and go to a place of their own, all of them stored."""
    raqqa, hama = _rows("R", RAQQA, 3), _rows("H", HAMA, 3)
    results = await asyncio.gather(
        import_rows(store, raqqa, chunk_size=2), import_rows(store, hama, chunk_size=2)
    )
    assert [(r.accepted, r.rejected) for r in results] == [(3, 0), (3, 0)]
    places = await _places(owner)
    assert sorted(len(points) for points in places.values()) == [1, 1]
    assert {p for points in places.values() for p in points} == {RAQQA, HAMA}
    assert "al-mansurah" in places
    # The same files again store nothing new: every row finds its own place.
    again = await asyncio.gather(
        import_rows(store, raqqa, chunk_size=2), import_rows(store, hama, chunk_size=2)
    )
    assert [(r.accepted, r.duplicate, r.rejected) for r in again] == [(0, 3, 0), (0, 3, 0)]
