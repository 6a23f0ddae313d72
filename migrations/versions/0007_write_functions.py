"""Least privilege: the service role writes only through functions that keep the invariants.

Before this revision the service role held INSERT on ``events`` and ``event_links``, UPDATE
on ``log_head``, ``projection_state`` and ``places``, INSERT and UPDATE on ``api_keys``, and
INSERT, UPDATE and DELETE on ``segments``: one statement of its own (or of anyone who took
over its connection) could mint an admin key, move the head past the chain, forge a link or
rewrite the front. Now it holds SELECT on them, and writes through ``SECURITY DEFINER``
functions owned by the migration's role, in the manner of message-db's ``write_message``
(its ``database/functions/write-message.sql``), each one enforcing what DESIGN section 6
says of the log:

* ``frontline_lock_head()``: takes the head row for the transaction (one appender at a
  time) and reads the clock under the lock.
* ``frontline_append(...)``: writes one commit. The function itself numbers the events
  after the head (dense positions: the caller cannot choose them), chains them from the
  head's hash (each ``prev_hash`` is the previous event's hash, the first one the head's),
  checks that each hash is SHA-256 of the previous hash and the record and each digest the
  SHA-256 of the payload, that ``recorded_at`` never goes back, then writes the events,
  the links exactly as the payloads state them (derived here, never given: a link no
  payload states cannot be written), the place registry, and moves the head to the last
  event. A bad commit is refused whole.
* ``frontline_project_commit(...)``: the projection of one commit, in the commit's own
  transaction (the head row was written by this transaction, and the rows are known from
  the head): moves the projection if it was in step, closes the replaced rows, inserts the
  new ones (issue 12: one round trip per commit).
* ``frontline_adopt_policy(...)``: an empty log's projection takes the served policy.
* ``frontline_swap_segments(...)``: as in 0005 and 0006, and it moves the projection to the
  head it swapped at, and moves the write grants with the names: the twin a rebuild fills
  (``segments_next``, COPYed into by its workers) is writable by the service role, the
  served table is not.
* ``frontline_lock_segments_for_swap()``: the rebuild's LOCK TABLE of both tables before the
  swap (ACCESS EXCLUSIVE needs UPDATE or DELETE on the table, which the role no longer has on
  the served one), under the caller's lock_timeout.

API keys are created and revoked by the owner only (``frontline keys``, the first admin
key of ``frontline serve``): the service reads them.

Every function is ``SECURITY DEFINER`` with ``search_path`` fixed to ``pg_catalog, public,
pg_temp`` (the temporary schema last, so that no temporary table of the caller can stand in
for a table the function names; they name every table with its schema anyway), and
executable by the service role alone (``REVOKE ALL ... FROM PUBLIC``: functions are
executable by everyone by default), as PostgreSQL's "Writing SECURITY DEFINER Functions
Safely" advises.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import importlib

from alembic import op

from migrations import service_role

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SAFE = "SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp"
"""What every function of this revision is declared with."""
GENERIC = "SET plan_cache_mode = force_generic_plan"
"""For the head lock, a one-row update by primary key: planned once per session (the
service's sessions force custom plans, for the optional filters of its reads). Not for the
append and projection functions: their joins of arrays against places and segments are
planned for the arrays' sizes, as the statements they replace were."""

#: The event columns ``frontline_append`` takes, as arrays, in order (the position, the
#: commit position and the previous hash are the function's own to set).
APPEND_ARGUMENTS = """
  p_id uuid[], p_place_id text[], p_place_version bigint[], p_type text[],
  p_source_key text[], p_valid_from timestamptz[], p_valid_to timestamptz[],
  p_recorded_at timestamptz, p_submitter text[], p_payload text[], p_payload_digest bytea[],
  p_record text[], p_hash bytea[],
  g_id text[], g_name text[], g_kind text[], g_lat float8[], g_lon float8[], g_parent text[],
  g_aliases text[], g_precision text[], g_version bigint[], g_first bigint[], g_last bigint[]
"""
APPEND_SIGNATURE = (
    "frontline_append(uuid[], text[], bigint[], text[], text[], timestamptz[], timestamptz[], "
    "timestamptz, text[], text[], bytea[], text[], bytea[], text[], text[], text[], float8[], "
    "float8[], text[], text[], text[], bigint[], bigint[], bigint[])"
)
PROJECT_SIGNATURE = (
    "frontline_project_commit(bigint, bigint, text, integer, text[], timestamptz[], text[], "
    "timestamptz[], timestamptz[], text[], text[], text[], boolean[], smallint[], text[], "
    "text[])"
)
FUNCTIONS = (
    "frontline_lock_head()",
    APPEND_SIGNATURE,
    PROJECT_SIGNATURE,
    "frontline_adopt_policy(text, integer)",
    "frontline_swap_segments(bigint, text, integer)",
    "frontline_lock_segments_for_swap()",
)

#: What the service role held before this revision and no longer holds.
REVOKED = (
    ("INSERT", "events"),
    ("INSERT", "event_links"),
    ("UPDATE", "log_head"),
    ("INSERT, UPDATE", "places"),
    ("INSERT, UPDATE", "api_keys"),
    ("INSERT, UPDATE, DELETE", "segments"),
    ("UPDATE", "projection_state"),
)


def upgrade() -> None:
    create_lock_function()
    create_append_function()
    create_project_function()
    create_adopt_function()
    replace_swap_function()
    create_lock_segments_function()
    fix_search_paths()
    revoke_direct_writes()
    grant_functions()


def downgrade() -> None:
    role = service_role()
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
    # The grants 0001, 0002 and 0004 gave; and 0005's swap, whose grant follows the name.
    for privilege, table in REVOKED:
        op.execute(f"GRANT {privilege} ON {table} TO {role}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON segments_next TO {role}")
    for function in TWIN_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} SET search_path = pg_catalog, public")
    probe = importlib.import_module("migrations.versions.0006_state_probe")
    probe._functions(probe.AFTER)  # 0006's own definition of its three functions
    op.execute("REVOKE ALL ON FUNCTION frontline_swap_segments() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION frontline_swap_segments() TO {role}")


def create_lock_function() -> None:
    # An UPDATE (not SELECT ... FOR UPDATE, which needs UPDATE on the table) so that the
    # clock is read after the lock is held: recorded_at never decreases along positions.
    # PL/pgSQL, not SQL: a SQL function's body is planned again at every call.
    op.execute(
        f"""
        CREATE FUNCTION frontline_lock_head(
          OUT "position" bigint, OUT hash bytea, OUT now timestamptz
        )
        LANGUAGE plpgsql {SAFE} {GENERIC}
        AS $$
        BEGIN
          UPDATE public.log_head AS h SET position = h.position WHERE h.id = 1
          RETURNING h.position, h.hash, clock_timestamp() INTO "position", hash, now;
        END $$
        """
    )


def create_append_function() -> None:
    # The caller has planned the commit (ids, versions, records and hashes, in Python) under
    # the head lock; this checks what the chain's integrity rests on, then writes it all.
    # The previous hashes are the head's and the commit's but its last, as one array built
    # once and unnested beside the others: subscripting p_hash[i] row by row walks the
    # array of variable-length values from its start each time (quadratic in the commit),
    # and lag() sorts the rows.
    # Links are read from the payloads that contain a relates_to key: canonical JSON
    # (RFC 8785) has no spaces and leaves out an empty relates_to, and a quote inside a
    # string is escaped, so the text '"relates_to":[' appears exactly in those payloads.
    op.execute(
        f"""
        CREATE FUNCTION frontline_append({APPEND_ARGUMENTS}) RETURNS void
        LANGUAGE plpgsql {SAFE}
        AS $$
        DECLARE
          head_position bigint;
          head_hash bytea;
          last_recorded timestamptz;
          n integer := coalesce(cardinality(p_id), 0);
          prev bytea[];
          bad integer;
        BEGIN
          SELECT h.position, h.hash INTO head_position, head_hash
          FROM public.log_head AS h WHERE h.id = 1 FOR UPDATE;
          IF n = 0 OR (n = ALL (ARRAY[
               cardinality(p_place_id), cardinality(p_place_version), cardinality(p_type),
               cardinality(p_source_key), cardinality(p_valid_from), cardinality(p_valid_to),
               cardinality(p_submitter), cardinality(p_payload), cardinality(p_payload_digest),
               cardinality(p_record), cardinality(p_hash)])) IS NOT TRUE THEN
            RAISE EXCEPTION 'frontline_append: a commit of % events with arrays of other '
              'lengths', n USING ERRCODE = 'invalid_parameter_value';
          END IF;
          prev := ARRAY[head_hash] || p_hash[1:n - 1];
          SELECT min(u.ord) INTO bad
          FROM unnest(p_record, p_hash, prev, p_payload, p_payload_digest) WITH ORDINALITY
               AS u(record, hash, prev_hash, payload, digest, ord)
          WHERE u.hash IS DISTINCT FROM sha256(u.prev_hash || convert_to(u.record, 'UTF8'))
             OR u.digest IS DISTINCT FROM sha256(convert_to(u.payload, 'UTF8'));
          IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'frontline_append: the event at position % breaks the hash chain '
              '(its hash is not SHA-256 of the previous hash and its record, or its digest '
              'not that of its payload)', head_position + bad
              USING ERRCODE = 'data_exception';
          END IF;
          SELECT e.recorded_at INTO last_recorded
          FROM public.events AS e WHERE e.position = head_position;
          IF p_recorded_at IS NULL OR p_recorded_at < last_recorded
             OR p_recorded_at > clock_timestamp() THEN
            RAISE EXCEPTION 'frontline_append: recorded_at % is before the head''s % or '
              'after now', p_recorded_at, last_recorded USING ERRCODE = 'data_exception';
          END IF;

          INSERT INTO public.events (
            position, id, place_id, place_version, type, source_key, valid_from, valid_to,
            recorded_at, commit_position, submitter, payload, payload_digest, record,
            prev_hash, hash)
          SELECT head_position + u.ord, u.id, u.place_id, u.place_version, u.type,
                 u.source_key, u.valid_from, u.valid_to, p_recorded_at, head_position + n,
                 u.submitter, u.payload, u.digest, u.record, u.prev_hash, u.hash
          FROM unnest(p_id, p_place_id, p_place_version, p_type, p_source_key, p_valid_from,
                      p_valid_to, p_submitter, p_payload, p_payload_digest, p_record, p_hash,
                      prev)
               WITH ORDINALITY
               AS u(id, place_id, place_version, type, source_key, valid_from, valid_to,
                    submitter, payload, digest, record, hash, prev_hash, ord);

          INSERT INTO public.event_links (position, id, target, relation)
          SELECT head_position + u.ord, u.id, (l.link ->> 'event')::uuid, l.link ->> 'relation'
          FROM unnest(p_id, p_payload) WITH ORDINALITY AS u(id, payload, ord)
          CROSS JOIN LATERAL jsonb_array_elements(u.payload::jsonb -> 'relates_to') AS l(link)
          WHERE strpos(u.payload, '"relates_to":[') > 0;

          -- The place registry (appenders hold the head lock: no other transaction writes
          -- places meanwhile, so an UPDATE of the known ones and an INSERT of the rest do).
          WITH given AS (
            SELECT g.id, g.name, g.kind, g.lat, g.lon, g.parent,
                   string_to_array(g.aliases_text, E'\\x1f') AS names, g.precision, g.version,
                   g.first_position, g.last_position
            FROM unnest(g_id, g_name, g_kind, g_lat, g_lon, g_parent, g_aliases, g_precision,
                        g_version, g_first, g_last)
                 AS g(id, name, kind, lat, lon, parent, aliases_text, precision, version,
                      first_position, last_position)
          ),
          updated AS (
            UPDATE public.places AS p SET
              version = g.version,
              last_position = g.last_position,
              kind = coalesce(p.kind, g.kind),
              lat = coalesce(p.lat, g.lat),
              lon = coalesce(p.lon, g.lon),
              parent = coalesce(p.parent, g.parent),
              precision = coalesce(p.precision, g.precision),
              aliases = (
                SELECT coalesce(array_agg(DISTINCT a ORDER BY a), '{{}}')
                FROM unnest(p.aliases || g.names) AS a
                WHERE a <> '' AND a <> p.name
              )
            FROM given AS g
            WHERE p.id = g.id
            RETURNING p.id
          )
          INSERT INTO public.places (id, name, kind, lat, lon, parent, aliases, precision,
                                     version, first_position, last_position)
          SELECT g.id, g.name, g.kind, g.lat, g.lon, g.parent,
                 (SELECT coalesce(array_agg(DISTINCT a ORDER BY a), '{{}}')
                  FROM unnest(g.names) AS a WHERE a <> '' AND a <> g.name),
                 g.precision, g.version, g.first_position, g.last_position
          FROM given AS g
          WHERE g.id NOT IN (SELECT id FROM updated);

          UPDATE public.log_head SET position = head_position + n, hash = p_hash[n]
          WHERE id = 1;
        END $$
        """
    )


def create_project_function() -> None:
    # Rows known from a commit are written in that commit's transaction and nowhere else:
    # the head row must have been written by this very transaction (its xmin), the commit
    # must be the head, and the projection must stand where it stood before the commit
    # (under this policy: otherwise its rows are stale and only a rebuild brings them back,
    # and nothing is written; the answer says whether the commit was projected).
    # segments_current is not unique, so a row closed and a row inserted with the same
    # (place_id, valid_from) in one commit never conflict.
    op.execute(
        f"""
        CREATE FUNCTION frontline_project_commit(
          p_commit bigint, p_before bigint, p_policy text, p_policy_version integer,
          close_place text[], close_from timestamptz[],
          new_place text[], new_from timestamptz[], new_to timestamptz[],
          new_controller text[], new_status text[], new_status_by text[],
          new_disputed boolean[], new_confidence smallint[], new_basis text[], new_body text[]
        ) RETURNS boolean
        LANGUAGE plpgsql {SAFE}
        AS $$
        BEGIN
          IF NOT EXISTS (
            SELECT FROM public.log_head AS h
            WHERE h.id = 1 AND h.position = p_commit AND p_commit > p_before
              AND h.xmin = pg_current_xact_id()::xid
          ) THEN
            RAISE EXCEPTION 'frontline_project_commit: commit % is not the head this '
              'transaction wrote', p_commit USING ERRCODE = 'object_not_in_prerequisite_state';
          END IF;
          UPDATE public.projection_state
          SET position = p_commit, policy = p_policy, policy_version = p_policy_version
          WHERE id = 1 AND position = p_before
            AND (position = 0 OR (policy = p_policy AND policy_version = p_policy_version));
          IF NOT FOUND THEN
            RETURN false;
          END IF;
          IF cardinality(close_place) > 0 THEN
            UPDATE public.segments AS s SET known_to = p_commit
            FROM unnest(close_place, close_from) AS c(place_id, valid_from)
            WHERE s.place_id = c.place_id AND s.valid_from = c.valid_from
              AND s.known_to IS NULL;
          END IF;
          IF cardinality(new_place) > 0 THEN
            INSERT INTO public.segments (
              place_id, valid_from, valid_to, known_from, known_to, controller, status,
              status_by, disputed, confidence, basis, body)
            SELECT r.place_id, r.valid_from, r.valid_to, p_commit, NULL, r.controller,
                   r.status, r.status_by, r.disputed, r.confidence, r.basis, r.body
            FROM unnest(new_place, new_from, new_to, new_controller, new_status,
                        new_status_by, new_disputed, new_confidence, new_basis, new_body)
                 AS r(place_id, valid_from, valid_to, controller, status, status_by,
                      disputed, confidence, basis, body);
          END IF;
          RETURN true;
        END $$
        """
    )


def create_adopt_function() -> None:
    # Only an empty log's projection may change policy without a rebuild: it holds no row.
    op.execute(
        f"""
        CREATE FUNCTION frontline_adopt_policy(p_policy text, p_policy_version integer)
        RETURNS boolean
        LANGUAGE plpgsql {SAFE}
        AS $$
        BEGIN
          UPDATE public.projection_state
          SET position = 0, policy = p_policy, policy_version = p_policy_version
          WHERE id = 1
            AND (SELECT h.position FROM public.log_head AS h WHERE h.id = 1 FOR UPDATE) = 0
            AND NOT EXISTS (SELECT FROM public.segments);
          RETURN FOUND;
        END $$
        """
    )


def replace_swap_function() -> None:
    # 0005's swap, which also moves the projection to the head it swapped at (the twin's
    # rows reach it: the caller caught up under the head lock) and the write grants with
    # the names. The service role's role name is fixed here, at migration time.
    role = service_role()
    indexes = importlib.import_module("migrations.versions.0006_state_probe").AFTER
    missing = " OR ".join(
        f"to_regclass('public.segments_next_{suffix}') IS NULL" for suffix in indexes
    )
    renames = []
    for suffix in indexes:
        renames += [
            f"ALTER INDEX public.segments_{suffix} RENAME TO segments_swap_{suffix};",
            f"ALTER INDEX public.segments_next_{suffix} RENAME TO segments_{suffix};",
            f"ALTER INDEX public.segments_swap_{suffix} RENAME TO segments_next_{suffix};",
        ]
    body = "\n          ".join(renames)
    op.execute("DROP FUNCTION frontline_swap_segments()")
    op.execute(
        f"""
        CREATE FUNCTION frontline_swap_segments(
          p_position bigint, p_policy text, p_policy_version integer
        ) RETURNS void
        LANGUAGE plpgsql {SAFE}
        SET lock_timeout = '2s'
        AS $$
        DECLARE
          head bigint;
        BEGIN
          SELECT h.position INTO head FROM public.log_head AS h WHERE h.id = 1 FOR UPDATE;
          IF head <> p_position THEN
            RAISE EXCEPTION 'frontline_swap_segments: the rows reach position %, the log %',
              p_position, head USING ERRCODE = 'object_not_in_prerequisite_state';
          END IF;
          IF {missing} THEN
            RAISE EXCEPTION 'segments_next is not indexed: frontline_index_segments_next() '
              'must run before the swap' USING ERRCODE = 'object_not_in_prerequisite_state';
          END IF;
          ALTER TABLE public.segments RENAME TO segments_swap;
          ALTER TABLE public.segments_next RENAME TO segments;
          ALTER TABLE public.segments_swap RENAME TO segments_next;
          {body}
          REVOKE INSERT, UPDATE, DELETE ON public.segments FROM {role};
          GRANT INSERT, UPDATE, DELETE ON public.segments_next TO {role};
          UPDATE public.projection_state
          SET position = p_position, policy = p_policy, policy_version = p_policy_version
          WHERE id = 1;
        END $$
        """
    )


def create_lock_segments_function() -> None:
    # Locks taken in a function are held to the end of the caller's transaction; the
    # caller's SET LOCAL lock_timeout applies (the function sets none of its own).
    op.execute(
        f"""
        CREATE FUNCTION frontline_lock_segments_for_swap() RETURNS void
        LANGUAGE plpgsql {SAFE}
        AS $$
        BEGIN
          LOCK TABLE public.segments, public.segments_next IN ACCESS EXCLUSIVE MODE;
        END $$
        """
    )


TWIN_FUNCTIONS = ("frontline_clear_segments_next()", "frontline_index_segments_next()")
"""0005's other functions, whose search_path put the temporary schema first (implicitly)."""


def fix_search_paths() -> None:
    for function in TWIN_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} SET search_path = pg_catalog, public, pg_temp")


def revoke_direct_writes() -> None:
    role = service_role()
    for privilege, table in REVOKED:
        op.execute(f"REVOKE {privilege} ON {table} FROM {role}")


def grant_functions() -> None:
    role = service_role()
    for function in FUNCTIONS:
        # Functions are executable by PUBLIC unless revoked: these are the service's alone.
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {role}")
