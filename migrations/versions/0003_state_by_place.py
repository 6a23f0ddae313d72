"""Indexes that make an answer about the front cost what it holds, not what the log holds.

``GET /v1/state?bbox=`` finds the places in the box by their point (a GiST on ``places``);
every read of segments then probes, place by place, one GiST over (the place, as a
one-value range of its id's hash; the valid range; the known range). The embedded
PostgreSQL has no ``btree_gist``, so the place goes into the GiST as a range. That index
replaces the two that served the whole front and a place's timeline (fewer indexes to keep
up on each append).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX places_point ON places USING gist (point(lon, lat))")
    op.execute(
        """
        CREATE INDEX segments_place_bitemporal ON segments USING gist (
          int8range(hashtext(place_id)::int8, hashtext(place_id)::int8, '[]'),
          tstzrange(valid_from, valid_to, '[)'),
          int8range(known_from, known_to, '[)')
        )
        """
    )
    op.execute("DROP INDEX segments_bitemporal")
    op.execute("DROP INDEX segments_place_known")


def downgrade() -> None:
    op.execute("CREATE INDEX segments_place_known ON segments (place_id, known_from)")
    op.execute(
        """
        CREATE INDEX segments_bitemporal ON segments USING gist (
          tstzrange(valid_from, valid_to, '[)'),
          int8range(known_from, known_to, '[)')
        )
        """
    )
    op.execute("DROP INDEX segments_place_bitemporal")
    op.execute("DROP INDEX places_point")
