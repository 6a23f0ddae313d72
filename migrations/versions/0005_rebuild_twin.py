"""A twin of ``segments`` that a rebuild fills while the service goes on, and its swap.

A rebuild writes every row into ``segments_next`` while readers keep reading ``segments``
and appends keep going; once it has caught up with the log, one short transaction under the
head lock swaps the two tables' names (and their indexes'). The service's role must not own
tables (DESIGN 6), so the three steps only an owner may take are functions owned by the
migration's role, ``SECURITY DEFINER`` with a fixed ``search_path``, executable by the
service role alone: emptying the twin (and dropping its indexes: COPY into a table without
them, then building them, costs PostgreSQL less than half of keeping them up row by row),
indexing it and refreshing its statistics once it is filled, and renaming.

Both tables have the same columns, constraints, indexes and grants, so whichever of them is
``segments`` after a swap serves alike; a later migration that changes ``segments`` (its
columns or its indexes) must change ``segments_next`` and ``frontline_index_segments_next``
the same way.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

from migrations import service_role

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEXES = ("current", "place_bitemporal")
"""The suffixes of the index names each table carries (``segments_<suffix>``,
``segments_next_<suffix>``); the swap renames them with their tables."""


# The twin's indexes: those of segments (migrations 0002 and 0003), under the twin's names.
TWIN_INDEXES = (
    "CREATE INDEX IF NOT EXISTS segments_next_current ON public.segments_next "
    "(place_id, valid_from) WHERE known_to IS NULL",
    "CREATE INDEX IF NOT EXISTS segments_next_place_bitemporal ON public.segments_next "
    "USING gist (int8range(hashtext(place_id)::int8, hashtext(place_id)::int8, '[]'), "
    "tstzrange(valid_from, valid_to, '[)'), int8range(known_from, known_to, '[)'))",
)


def upgrade() -> None:
    create_twin()
    create_clear_function()
    create_index_function()
    create_swap_function()
    grant_service_role()


def downgrade() -> None:
    # Projections are derived from the log alone: dropping the twin loses nothing.
    op.execute("DROP FUNCTION frontline_swap_segments()")
    op.execute("DROP FUNCTION frontline_index_segments_next()")
    op.execute("DROP FUNCTION frontline_clear_segments_next()")
    op.execute("DROP TABLE segments_next")


def create_twin() -> None:
    # Columns, defaults and CHECK constraints from segments itself; the indexes by name, so
    # that the swap can rename each to its counterpart's.
    op.execute(
        "CREATE TABLE segments_next (LIKE segments INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    for statement in TWIN_INDEXES:
        op.execute(statement)


def create_clear_function() -> None:
    # TRUNCATE (an owner's right) instead of DELETE: a rebuild starts from an empty table
    # without leaving millions of dead rows for vacuum; and without indexes, built once the
    # table is filled.
    op.execute(
        """
        CREATE FUNCTION frontline_clear_segments_next() RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
        BEGIN
          TRUNCATE public.segments_next;
          DROP INDEX IF EXISTS public.segments_next_current;
          DROP INDEX IF EXISTS public.segments_next_place_bitemporal;
        END $$
        """
    )


def create_index_function() -> None:
    # The indexes of the filled twin (the rebuild's catch-up rounds need them, and the swap
    # makes them the served table's), and its statistics, so that the first reads after the
    # swap are planned on what it holds.
    body = ";\n          ".join(TWIN_INDEXES)
    op.execute(
        f"""
        CREATE FUNCTION frontline_index_segments_next() RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
        BEGIN
          {body};
          ANALYZE public.segments_next;
        END $$
        """
    )


def create_swap_function() -> None:
    # The caller holds the head lock (the function takes it too, so no append can run half
    # on one table and half on the other). Renaming needs an ACCESS EXCLUSIVE lock on both
    # tables: it waits for reads in flight, and new reads queue behind it; lock_timeout
    # bounds that wait (the rebuild then retries), so a slow reader cannot stall the rest.
    # Statements prepared before the swap name the table, not its oid: PostgreSQL
    # invalidates them and plans them again on the table that now has the name.
    renames = []
    for suffix in INDEXES:
        renames += [
            f"ALTER INDEX public.segments_{suffix} RENAME TO segments_swap_{suffix};",
            f"ALTER INDEX public.segments_next_{suffix} RENAME TO segments_{suffix};",
            f"ALTER INDEX public.segments_swap_{suffix} RENAME TO segments_next_{suffix};",
        ]
    body = "\n          ".join(renames)
    op.execute(
        f"""
        CREATE FUNCTION frontline_swap_segments() RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public
        SET lock_timeout = '2s'
        AS $$
        BEGIN
          PERFORM 1 FROM public.log_head WHERE id = 1 FOR UPDATE;
          IF to_regclass('public.segments_next_current') IS NULL
             OR to_regclass('public.segments_next_place_bitemporal') IS NULL THEN
            RAISE EXCEPTION 'segments_next is not indexed: frontline_index_segments_next() '
              'must run before the swap' USING ERRCODE = 'object_not_in_prerequisite_state';
          END IF;
          ALTER TABLE public.segments RENAME TO segments_swap;
          ALTER TABLE public.segments_next RENAME TO segments;
          ALTER TABLE public.segments_swap RENAME TO segments_next;
          {body}
        END $$
        """
    )


def grant_service_role() -> None:
    role = service_role()
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON segments_next TO {role}")
    for function in (
        "frontline_clear_segments_next()",
        "frontline_index_segments_next()",
        "frontline_swap_segments()",
    ):
        # Functions are executable by PUBLIC unless revoked: these are the service's alone.
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {role}")
