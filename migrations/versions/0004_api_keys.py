"""API keys with roles (issue 5): stored as SHA-256 hashes only.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

from migrations import service_role

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_keys (
          id          uuid        PRIMARY KEY,
          name        text        NOT NULL UNIQUE CHECK (name <> ''),
          role        text        NOT NULL CHECK (role IN ('ingest', 'read', 'audit', 'admin')),
          key_hash    bytea       NOT NULL UNIQUE CHECK (length(key_hash) = 32),
          created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
          revoked_at  timestamptz
        )
        """
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON api_keys TO {service_role()}")


def downgrade() -> None:
    # Keys guard access, they are not evidence: dropping them loses no event.
    op.execute("DROP TABLE api_keys")
