"""A twin of ``segments`` that a rebuild fills while the service goes on, and its swap.

A rebuild writes every row into ``segments_next`` while readers keep reading ``segments``
and appends keep going; once it has caught up with the log, one short transaction under the
head lock swaps the two tables' names (and their indexes'). The service's role must not own
tables (DESIGN 6), so the three steps only an owner may take (emptying the twin, refreshing
its statistics, renaming) are functions owned by the migration's role, ``SECURITY DEFINER``
with a fixed ``search_path``, executable by the service role alone.

Both tables have the same columns, constraints, indexes and grants, so whichever of them is
``segments`` after a swap serves alike; a later migration that changes ``segments`` must
change ``segments_next`` the same way.

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


def upgrade() -> None:
    create_twin()
    create_clear_function()
    create_analyze_function()
    create_swap_function()
    grant_service_role()


def downgrade() -> None:
    # Projections are derived from the log alone: dropping the twin loses nothing.
    op.execute("DROP FUNCTION frontline_swap_segments()")
    op.execute("DROP FUNCTION frontline_analyze_segments_next()")
    op.execute("DROP FUNCTION frontline_clear_segments_next()")
    op.execute("DROP TABLE segments_next")


def create_twin() -> None:
    # Columns, defaults and CHECK constraints from segments itself; the indexes by name, so
    # that the swap can rename each to its counterpart's.
    op.execute(
        "CREATE TABLE segments_next (LIKE segments INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    op.execute(
        "CREATE INDEX segments_next_current ON segments_next (place_id, valid_from) "
        "WHERE known_to IS NULL"
    )
    op.execute(
        """
        CREATE INDEX segments_next_place_bitemporal ON segments_next USING gist (
          int8range(hashtext(place_id)::int8, hashtext(place_id)::int8, '[]'),
          tstzrange(valid_from, valid_to, '[)'),
          int8range(known_from, known_to, '[)')
        )
        """
    )


def create_clear_function() -> None:
    # TRUNCATE (an owner's right) instead of DELETE: a rebuild starts from an empty table
    # without leaving millions of dead rows for vacuum.
    op.execute(
        """
        CREATE FUNCTION frontline_clear_segments_next() RETURNS void
        LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public
        AS 'TRUNCATE public.segments_next'
        """
    )


def create_analyze_function() -> None:
    # Statistics for the filled twin before it becomes segments, so that the first reads
    # after the swap are planned on what it holds.
    op.execute(
        """
        CREATE FUNCTION frontline_analyze_segments_next() RETURNS void
        LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public
        AS 'ANALYZE public.segments_next'
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
        "frontline_analyze_segments_next()",
        "frontline_swap_segments()",
    ):
        # Functions are executable by PUBLIC unless revoked: these are the service's alone.
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {role}")
