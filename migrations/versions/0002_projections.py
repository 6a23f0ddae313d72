"""Bitemporal projection of each place's timeline (DESIGN section 5).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from migrations import service_role

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_segments()
    create_projection_state()
    index_known_time()
    grant_service_role()


def downgrade() -> None:
    # Projections are derived from the log alone: dropping them loses nothing.
    op.execute("DROP TABLE segments")
    op.execute("DROP TABLE projection_state")
    op.execute("DROP INDEX events_recorded_at")
    op.execute("CREATE INDEX events_recorded_at ON events USING brin (recorded_at)")


def create_segments() -> None:
    # One row per segment of a place's timeline, as known over a range of commit positions:
    # [known_from, known_to). A commit that changes a place's timeline closes the rows it
    # replaces (known_to = its last position) and inserts the new ones (known_from = the same).
    op.execute(
        """
        CREATE TABLE segments (
          place_id    text        NOT NULL,
          valid_from  timestamptz NOT NULL,
          valid_to    timestamptz,
          known_from  bigint      NOT NULL,
          known_to    bigint,
          controller  text,
          status      text        NOT NULL,
          status_by   text,
          disputed    boolean     NOT NULL,
          confidence  smallint    NOT NULL,
          basis       text        NOT NULL,
          body        text        NOT NULL,
          CHECK (valid_to IS NULL OR valid_to > valid_from),
          CHECK (known_to IS NULL OR known_to > known_from)
        )
        """
    )
    op.execute(
        "CREATE INDEX segments_current ON segments (place_id, valid_from) WHERE known_to IS NULL"
    )
    op.execute("CREATE INDEX segments_place_known ON segments (place_id, known_from)")
    op.execute(
        """
        CREATE INDEX segments_bitemporal ON segments USING gist (
          tstzrange(valid_from, valid_to, '[)'),
          int8range(known_from, known_to, '[)')
        )
        """
    )


def create_projection_state() -> None:
    op.execute(
        """
        CREATE TABLE projection_state (
          id              smallint PRIMARY KEY CHECK (id = 1),
          policy          text     NOT NULL,
          policy_version  integer  NOT NULL,
          position        bigint   NOT NULL
        )
        """
    )
    op.execute(
        "INSERT INTO projection_state (id, policy, policy_version, position) "
        "VALUES (1, 'credibility-v1', 1, 0)"
    )


def index_known_time() -> None:
    # known_at=<timestamp> asks for the last commit recorded at or before it: an ordered
    # index answers that with one probe (recorded_at never decreases along positions).
    op.execute("DROP INDEX events_recorded_at")
    op.execute("CREATE INDEX events_recorded_at ON events (recorded_at)")


def grant_service_role() -> None:
    role = service_role()
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON segments TO {role}")
    op.execute(f"GRANT SELECT, UPDATE ON projection_state TO {role}")
