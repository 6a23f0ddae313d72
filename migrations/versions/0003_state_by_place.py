"""Indexes that make an answer about a bounding box cost what the box holds.

``GET /v1/state?bbox=`` finds the places in the box by their point (a GiST on ``places``),
then each place's segment at the valid time and known position by one probe of a GiST over
(the place, as a one-value range of its id's hash; the valid range; the known range). This
PostgreSQL has no ``btree_gist``, so the place goes into the GiST as a range.

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
          int4range(hashtext(place_id), hashtext(place_id), '[]'),
          tstzrange(valid_from, valid_to, '[)'),
          int8range(known_from, known_to, '[)')
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX segments_place_bitemporal")
    op.execute("DROP INDEX places_point")
