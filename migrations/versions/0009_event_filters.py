"""Indexes for the filters of ``GET /v1/events``: type, side, actor, valid time, country.

``read_events_page.sql`` answers a page of the log in position order under any mix of
filters. Under the custom plan the service's sessions force, PostgreSQL then picks per
request between walking the primary key (a common filter: the page fills after a few rows)
and reading the filter's own index (a rare one), so no filter makes a page read the log:

* ``events_type_position`` (type, position): a rare type, in position order;
* ``events_side_position``, ``events_opponent_position``: the side or the opponent of the
  payload (an expression index over its JSON; the log is append-only, so each row's entry is
  made once, at append);
* ``events_actor_position``: the actor, case folded;
* ``events_valid``: GiST over the valid interval, for a valid-time range (overlap);
* ``places_parent``: the places inside a place, one level at a time (the ``country`` filter
  walks the parent chain down from the place named).

The place, source and recorded-time filters have their indexes since 0001 and 0002.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FIELDS = r"(replace(payload, '\u0000', '\u0020')::jsonb)"
r"""The payload as jsonb, for the expression indexes. jsonb refuses the escape ``\u0000``,
which free text (a quote, notes) may hold; the escape becomes ``\u0020`` first: the same
four hex digits' place, so the text stays valid JSON wherever the six characters stand
(an escape, or a backslash-u that an escaped backslash precedes), and no field an index
reads (side, opponent, actor: slugs and one-line text) can hold a NUL."""

INDEXES = {
    "events_type_position": "events (type, position)",
    "events_side_position": f"events (({FIELDS} ->> 'side'), position)",
    "events_opponent_position": f"events (({FIELDS} ->> 'opponent'), position)",
    "events_actor_position": f"events ((lower({FIELDS} ->> 'actor')), position)",
    "events_valid": "events USING gist (tstzrange(valid_from, valid_to))",
    "places_parent": "places (parent)",
}
"""Name: definition. read_events_page.sql states each expression the same way, or the index
is not used."""


def upgrade() -> None:
    for name, definition in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {definition}")
    op.execute("ANALYZE events")
    op.execute("ANALYZE places")


def downgrade() -> None:
    for name in INDEXES:
        op.execute(f"DROP INDEX {name}")
