"""A B-tree that finds a place's segment at a valid time as known at a position.

``GET /v1/state`` probes, for each place of a page (or of a box), the one row that covers
valid time V as known at position K. The GiST index of migration 0003 answers that probe
with its three ranges, but its first range is a hash of the place id folded into a point
(PostgreSQL has no GiST operator class for text equality without btree_gist), so a probe
visits about nine pages: 0.15 ms each, warm, at 1,000,000 events, and 300 ms for a box of
2,000 places. This index orders each place's rows by valid time, latest first, with the
known interval in the key (an open ``known_to`` as the largest bigint, so the whole
condition is checked on the index entry): the probe reads the first entry at or before V
known at K, about three pages, 0.03 ms (docs/benchmarks.md, "The state probe").

The twin of migration 0005 carries the same index, and its three functions (clear, index,
swap) handle it with the others, as 0005 asks of a migration that changes segments' indexes.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KNOWN_TO = "coalesce(known_to, 9223372036854775807)"
"""The index's expression for the end of a row's known interval (open: the largest bigint);
read_state.sql and read_state_in_box.sql state it the same way, or the index is not used."""

PROBE = f"(place_id, valid_from DESC, known_from, ({KNOWN_TO}))"

BEFORE = {
    "current": "(place_id, valid_from) WHERE known_to IS NULL",
    "place_bitemporal": (
        "USING gist (int8range(hashtext(place_id)::int8, hashtext(place_id)::int8, '[]'), "
        "tstzrange(valid_from, valid_to, '[)'), int8range(known_from, known_to, '[)'))"
    ),
}
"""The indexes of segments and its twin up to this migration (0002, 0003, 0005): suffix,
definition."""

AFTER = {**BEFORE, "place_valid": PROBE}


def upgrade() -> None:
    op.execute(f"CREATE INDEX segments_place_valid ON public.segments {PROBE}")
    op.execute(
        "DO $$ BEGIN IF to_regclass('public.segments_next_current') IS NOT NULL THEN "
        f"CREATE INDEX IF NOT EXISTS segments_next_place_valid ON public.segments_next {PROBE}; "
        "END IF; END $$"
    )
    _functions(AFTER)


def downgrade() -> None:
    _functions(BEFORE)
    op.execute("DROP INDEX IF EXISTS public.segments_next_place_valid")
    op.execute("DROP INDEX public.segments_place_valid")


def _index(table: str, suffix: str, definition: str) -> str:
    return f"CREATE INDEX IF NOT EXISTS {table}_{suffix} ON public.{table} {definition}"


def _functions(indexes: dict[str, str]) -> None:
    """Migration 0005's three functions, for this set of indexes (same owner, grants and
    search_path: CREATE OR REPLACE keeps the grants)."""
    drops = "\n          ".join(
        f"DROP INDEX IF EXISTS public.segments_next_{suffix};" for suffix in indexes
    )
    creates = "\n          ".join(
        _index("segments_next", suffix, definition) + ";" for suffix, definition in indexes.items()
    )
    missing = " OR ".join(
        f"to_regclass('public.segments_next_{suffix}') IS NULL" for suffix in indexes
    )
    renames = "\n          ".join(
        f"ALTER INDEX public.segments_{suffix} RENAME TO segments_swap_{suffix};\n          "
        f"ALTER INDEX public.segments_next_{suffix} RENAME TO segments_{suffix};\n          "
        f"ALTER INDEX public.segments_swap_{suffix} RENAME TO segments_next_{suffix};"
        for suffix in indexes
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION frontline_clear_segments_next() RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
        BEGIN
          TRUNCATE public.segments_next;
          {drops}
        END $$
        """
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION frontline_index_segments_next() RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
        BEGIN
          {creates}
          ANALYZE public.segments_next;
        END $$
        """
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION frontline_swap_segments() RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public
        SET lock_timeout = '2s'
        AS $$
        BEGIN
          PERFORM 1 FROM public.log_head WHERE id = 1 FOR UPDATE;
          IF {missing} THEN
            RAISE EXCEPTION 'segments_next is not indexed: frontline_index_segments_next() '
              'must run before the swap' USING ERRCODE = 'object_not_in_prerequisite_state';
          END IF;
          ALTER TABLE public.segments RENAME TO segments_swap;
          ALTER TABLE public.segments_next RENAME TO segments;
          ALTER TABLE public.segments_swap RENAME TO segments_next;
          {renames}
        END $$
        """
    )
