-- Connections the server can still open for ordinary roles: max_connections less those
-- reserved for superusers (and, from PostgreSQL 16, for pg_use_reserved_connections) and
-- those open now.
SELECT current_setting('max_connections')::int
  - current_setting('superuser_reserved_connections')::int
  - coalesce(current_setting('reserved_connections', true)::int, 0)
  - (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend')
