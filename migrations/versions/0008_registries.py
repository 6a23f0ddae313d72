"""Registries in the log: the index of registry events, and the ``editor`` role.

Registry events (``side_registered``) live in the log beside the events about places, in
streams of their own (``side:<id>``: a place id is a slug and never holds ':'). The store
reads the registry events it has not seen under the head lock at every commit, and a
rebuild reads them all: ``events_registry`` finds them without reading the log. The
``editor`` role may edit the registries (admin may too).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    index_registry_events()
    allow_editor_keys()


def downgrade() -> None:
    refuse_if_editor_keys_exist()
    op.execute("ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check")
    op.execute(
        "ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check "
        "CHECK (role IN ('ingest', 'read', 'audit', 'admin'))"
    )
    op.execute("DROP INDEX events_registry")


def index_registry_events() -> None:
    op.execute("CREATE INDEX events_registry ON events (position) WHERE strpos(place_id, ':') > 0")


def allow_editor_keys() -> None:
    op.execute("ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check")
    op.execute(
        "ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check "
        "CHECK (role IN ('ingest', 'read', 'audit', 'editor', 'admin'))"
    )


def refuse_if_editor_keys_exist() -> None:
    op.execute(
        """
        DO $$ BEGIN
          IF EXISTS (SELECT FROM api_keys WHERE role = 'editor') THEN
            RAISE EXCEPTION 'refusing to downgrade: editor keys exist; revoke them first'
              USING ERRCODE = 'object_in_use';
          END IF;
        END $$
        """
    )
