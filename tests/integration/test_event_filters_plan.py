"""The plans of ``read_events_page.sql`` (GET /v1/events' filters) stay fast: on 20,000
synthetic events, a rare filter reads its own index entries instead of the log, under the
custom plan the service's sessions force; the page's buffers, not the log's, bound the cost."""

from __future__ import annotations

import json
from typing import Any, Final

import asyncpg
import pytest

from service.store.queries import SQL

EVENTS: Final = 20_000
PLACES: Final = 200
PARAMETER_TYPES: Final = (
    "bigint, text, text, text, text, text, text[], timestamptz, timestamptz, timestamptz, "
    "timestamptz, bigint"
)


async def fill(owner: asyncpg.Connection) -> None:
    """EVENTS events over PLACES places, 50 a day from 2017-01-01; a few of each rare kind:
    positions divisible by 2,000 have the side `rare-side`, the actor `Rare Unit` and the
    type `siege_lifted`; place p-0 alone lies in the area `c-small`, every other in
    `c-big`."""
    await owner.execute(
        """
        INSERT INTO places (id, name, parent, version, first_position, last_position)
        SELECT 'p-' || n, 'P ' || n, CASE WHEN n = 0 THEN 'c-small' ELSE 'c-big' END,
               1, 1, 1
        FROM generate_series(0, $1::int - 1) AS n
        """,
        PLACES,
    )
    await owner.execute(
        """
        INSERT INTO events (position, id, place_id, place_version, type, source_key,
                            valid_from, valid_to, recorded_at, commit_position, payload,
                            payload_digest, record, prev_hash, hash)
        SELECT g, md5(g::text)::uuid, 'p-' || (g % $2::int), g,
               CASE WHEN g % 2000 = 0 THEN 'siege_lifted' ELSE 'capture' END,
               'source ' || (g % 7),
               timestamptz '2017-01-01' + (g / 50) * interval '1 day',
               timestamptz '2017-01-01' + (g / 50 + 1) * interval '1 day',
               timestamptz '2020-01-01' + g * interval '1 second', g,
               json_build_object(
                 'side', CASE WHEN g % 2000 = 0 THEN 'rare-side' ELSE 'side-' || (g % 3) END,
                 'actor', CASE WHEN g % 2000 = 0 THEN 'Rare Unit' ELSE 'Unit ' || (g % 5) END,
                 'opponent', 'side-9',
                 'quote', repeat('x', 200))::text,
               '\\x00', '{}', '\\x00', '\\x00'
        FROM generate_series(1, $1::int) AS g
        """,
        EVENTS,
        PLACES,
    )
    await owner.execute("ANALYZE events")
    await owner.execute("ANALYZE places")


async def explain(owner: asyncpg.Connection, args: list[Any]) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of the page query as the service runs it (custom plan)."""
    await owner.execute("SET plan_cache_mode = force_custom_plan")
    await owner.execute(f"PREPARE page ({PARAMETER_TYPES}) AS {SQL.read_events_page}")
    try:
        literals = ", ".join(_literal(a) for a in args)
        text = await owner.fetchval(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE page({literals})"
        )
    finally:
        await owner.execute("DEALLOCATE page")
    (plan,) = json.loads(text)
    top: dict[str, Any] = plan["Plan"]
    return top


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(v) for v in value) + "]::text[]"
    return "'" + str(value).replace("'", "''") + "'"


def _buffers(plan: dict[str, Any]) -> int:
    return int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))


def _nodes(plan: dict[str, Any]) -> list[str]:
    found = [f"{plan['Node Type']} {plan.get('Index Name', plan.get('Relation Name', ''))}"]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def args(**given: Any) -> list[Any]:
    """The page query's arguments: after 0, the filters given, a limit of 100."""
    names = (
        "place", "type", "source", "side", "actor", "places", "valid_from", "valid_to",
        "recorded_from", "recorded_to",
    )  # fmt: skip
    return [0, *(given.get(n) for n in names), 100]


RARE: Final[dict[str, tuple[dict[str, Any], int]]] = {
    "a rare side": ({"side": "rare-side"}, 10),
    "a rare actor": ({"actor": "rare unit"}, 10),
    "a rare type": ({"type": "siege_lifted"}, 10),
    "one day of valid time": ({"valid_from": "2017-03-01", "valid_to": "2017-03-01"}, 50),
    "a small area's places": ({"places": ["p-0"]}, 100),
    "a minute of recorded time": (
        {"recorded_from": "2020-01-01 01:00:00+00", "recorded_to": "2020-01-01 01:00:59+00"},
        60,
    ),
}


@pytest.mark.parametrize("name", list(RARE))
async def test_a_rare_filter_reads_its_index_not_the_log(
    owner: asyncpg.Connection, name: str
) -> None:
    """A filter that selects few of 20,000 events is answered from its index: no sequential
    scan of events, and fewer buffers than a tenth of the log's pages."""
    await fill(owner)
    pages = await owner.fetchval("SELECT relpages FROM pg_class WHERE relname = 'events'")
    given, count = RARE[name]
    plan = await explain(owner, args(**given))
    assert plan["Actual Rows"] == min(count, 100), (name, plan)
    assert not any(n.startswith("Seq Scan") for n in _nodes(plan)), (name, _nodes(plan))
    assert _buffers(plan) < pages / 10, (name, _buffers(plan), pages, _nodes(plan))


async def test_a_common_filter_walks_the_log_and_stops_at_the_page(
    owner: asyncpg.Connection,
) -> None:
    """A filter most events pass (a common side) walks the primary key in position order and
    stops once the page is full: a handful of buffers, not the log."""
    await fill(owner)
    pages = await owner.fetchval("SELECT relpages FROM pg_class WHERE relname = 'events'")
    plan = await explain(owner, args(side="side-9"))
    assert plan["Actual Rows"] == 100
    assert _buffers(plan) < pages / 10, (_buffers(plan), pages, _nodes(plan))
