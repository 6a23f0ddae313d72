"""Cheaper indexes for the event filters: the opponent and actor indexes made partial.

Migration 0009's indexes cost the import with projections off 0.64-0.70 of its speed
without them, about 50 us of PostgreSQL an inserted row for the five on ``events``
(``python -m bench.filter_indexes``, docs/benchmarks.md "The event filters' indexes"): the
GiST over the valid interval about half of it, each of the three expression indexes 6-7 us
(each parses the payload as jsonb). Two of them change, the answers do not (the page query
reads the same rows; only its access paths are cheaper to keep):

* ``events_opponent_position`` and ``events_actor_position``: partial, over the rows whose
  payload names the field (``strpos(payload, '"opponent"') > 0``): about a fifth of events
  name an opponent and three fifths an actor, and a row the predicate leaves out costs a
  substring search instead of a jsonb parse and an index entry (opponent 6.7 -> 1.5 us an
  inserted row, actor 7.4 -> 5.9). The predicate is a superset of the rows the expression is
  not NULL for: a payload with the key holds the text ``"opponent"`` (stored payloads are
  JCS, whose keys are never escaped; the predicate holds for JSON written with spaces too),
  and the rows it admits for other reasons (the word quoted in free text) only cost an
  entry. ``read_events_page.sql`` states the same predicate beside each expression, so the
  planner may use them. PostgreSQL keeps no statistics of a partial index's expression for
  the whole table, so two statistics objects (``events_opponent_filter``,
  ``events_actor_filter``: the predicate and the expression together, computed by ANALYZE,
  nothing at an append) let the planner still tell a common value, which walks the primary
  key, from a rare one.

``events_side_position`` stays whole (almost every event has a side), and so do
``events_type_position`` (a plain column, under 1 us), ``places_parent`` and the GiST
``events_valid`` (SP-GiST measured no cheaper; a BRIN would cost almost nothing an insert,
but answers a rare valid-time filter from whole block ranges, and not at all from ranges
not yet summarised, so a fresh import would read the log).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FIELDS = r"(replace(payload, '\u0000', '\u0020')::jsonb)"
"""As migration 0009 (and read_events_page.sql) state the payload as jsonb."""

INDEXES = {
    "events_opponent_position": (
        f"events (({FIELDS} ->> 'opponent'), position) "
        """WHERE strpos(payload, '"opponent"') > 0"""
    ),
    "events_actor_position": (
        f"events ((lower({FIELDS} ->> 'actor')), position) "
        """WHERE strpos(payload, '"actor"') > 0"""
    ),
}
"""Name: definition. read_events_page.sql states each expression and predicate the same way."""

STATISTICS = {
    "events_opponent_filter": f"""(strpos(payload, '"opponent"')), (({FIELDS} ->> 'opponent'))""",
    "events_actor_filter": f"""(strpos(payload, '"actor"')), (lower({FIELDS} ->> 'actor'))""",
}
"""Name: the expressions of the page query's clauses the statistics are of."""

BEFORE = {
    "events_opponent_position": f"events (({FIELDS} ->> 'opponent'), position)",
    "events_actor_position": f"events ((lower({FIELDS} ->> 'actor')), position)",
}
"""Migration 0009's definitions, for the downgrade."""


def _replace(definitions: dict[str, str]) -> None:
    for name, definition in definitions.items():
        op.execute(f"DROP INDEX {name}")
        op.execute(f"CREATE INDEX {name} ON {definition}")
    op.execute("ANALYZE events")


def upgrade() -> None:
    for name, expressions in STATISTICS.items():
        op.execute(f"CREATE STATISTICS {name} ON {expressions} FROM events")
    _replace(INDEXES)


def downgrade() -> None:
    for name in STATISTICS:
        op.execute(f"DROP STATISTICS {name}")
    _replace(BEFORE)
