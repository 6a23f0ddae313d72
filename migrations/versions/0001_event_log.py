"""The event log: events, links, the head row, the place registry, the service role.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from migrations import service_role

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_service_role()
    create_head()
    create_places()
    create_events()
    create_event_links()
    forbid_changes_to_the_log()
    grant_service_role()


def downgrade() -> None:
    refuse_if_events_exist()
    op.execute("DROP TABLE event_links")
    op.execute("DROP TABLE events")
    op.execute("DROP TABLE places")
    op.execute("DROP TABLE log_head")
    op.execute("DROP FUNCTION frontline_refuse_change()")
    # The role is cluster-wide and may serve other databases: it is left in place.


def create_service_role() -> None:
    role = service_role()
    op.execute(
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE {role} NOLOGIN;
          END IF;
        END $$
        """
    )


def create_head() -> None:
    # The single row every appender locks: commit order is position order only because
    # each append transaction holds this lock from reading the head to committing.
    op.execute(
        """
        CREATE TABLE log_head (
          id        smallint PRIMARY KEY CHECK (id = 1),
          position  bigint   NOT NULL CHECK (position >= 0),
          hash      bytea    NOT NULL CHECK (length(hash) = 32)
        )
        """
    )
    op.execute(
        "INSERT INTO log_head (id, position, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'))"
    )


def create_places() -> None:
    op.execute(
        """
        CREATE TABLE places (
          id               text    PRIMARY KEY,
          name             text    NOT NULL,
          kind             text,
          lat              double precision,
          lon              double precision,
          parent           text,
          aliases          text[]  NOT NULL DEFAULT '{}',
          precision        text,
          version          bigint  NOT NULL CHECK (version >= 1),
          first_position   bigint  NOT NULL,
          last_position    bigint  NOT NULL
        )
        """
    )


def create_events() -> None:
    op.execute(
        """
        CREATE TABLE events (
          position        bigint      PRIMARY KEY CHECK (position >= 1),
          id              uuid        NOT NULL UNIQUE,
          place_id        text        NOT NULL,
          place_version   bigint      NOT NULL CHECK (place_version >= 1),
          type            text        NOT NULL,
          source_key      text        NOT NULL,
          valid_from      timestamptz NOT NULL,
          valid_to        timestamptz NOT NULL CHECK (valid_to > valid_from),
          recorded_at     timestamptz NOT NULL,
          commit_position bigint      NOT NULL CHECK (commit_position >= position),
          submitter       text,
          payload         text        NOT NULL,
          payload_digest  bytea       NOT NULL,
          record          text        NOT NULL,
          prev_hash       bytea       NOT NULL,
          hash            bytea       NOT NULL,
          UNIQUE (place_id, place_version)
        )
        """
    )
    op.execute("CREATE INDEX events_place_position ON events (place_id, position)")
    op.execute("CREATE INDEX events_source_position ON events (source_key, position)")
    op.execute("CREATE INDEX events_recorded_at ON events USING brin (recorded_at)")


def create_event_links() -> None:
    op.execute(
        """
        CREATE TABLE event_links (
          position  bigint NOT NULL,
          id        uuid   NOT NULL,
          target    uuid   NOT NULL,
          relation  text   NOT NULL,
          PRIMARY KEY (id, target, relation)
        )
        """
    )
    op.execute("CREATE INDEX event_links_target ON event_links (target, position)")


def forbid_changes_to_the_log() -> None:
    op.execute(
        """
        CREATE FUNCTION frontline_refuse_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'the % table is append-only: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    for table in ("events", "event_links"):
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION frontline_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION frontline_refuse_change()"
        )
    op.execute(
        "CREATE TRIGGER log_head_kept BEFORE DELETE OR TRUNCATE ON log_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION frontline_refuse_change()"
    )


def grant_service_role() -> None:
    role = service_role()
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    op.execute(f"GRANT SELECT, INSERT ON events, event_links TO {role}")
    op.execute(f"GRANT SELECT, UPDATE ON log_head TO {role}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON places TO {role}")
    op.execute(f"GRANT SELECT ON alembic_version TO {role}")


def refuse_if_events_exist() -> None:
    op.execute(
        """
        DO $$ DECLARE held bigint;
        BEGIN
          SELECT position INTO held FROM log_head WHERE id = 1;
          IF held > 0 THEN
            RAISE EXCEPTION 'refusing to downgrade: the log holds % events, and this '
              'downgrade would drop them. Export the log first; to really drop it, '
              'drop the database instead.', held
              USING ERRCODE = 'object_in_use';
          END IF;
        END $$
        """
    )
