-- Whether some session holds the rebuild's advisory lock (try_rebuild_lock.sql): a rebuild
-- is under way, in this process or another.
SELECT EXISTS (
  SELECT 1 FROM pg_locks
  WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND classid = 1718775662 AND objid = 1919052900 AND objsubid = 2 AND granted
)
