-- Connections the server can still open for ordinary roles: max_connections less those
-- reserved for superusers (and, from PostgreSQL 16, for pg_use_reserved_connections) and
-- the sessions open now. A role sees other roles' sessions without their backend_type, so
-- sessions are those with a user (client backends; and the logical replication launcher,
-- one more counted: a spare).
SELECT current_setting('max_connections')::int
  - current_setting('superuser_reserved_connections')::int
  - coalesce(current_setting('reserved_connections', true)::int, 0)
  - (SELECT count(*)::int FROM pg_stat_activity WHERE usesysid IS NOT NULL)
