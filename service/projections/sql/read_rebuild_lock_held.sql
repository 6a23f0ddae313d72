-- Whether this session still holds the rebuild's lock (try_rebuild_lock.sql): a session
-- that was ended and replaced would not (its lock went with it).
SELECT EXISTS (
  SELECT 1 FROM pg_locks
  WHERE locktype = 'advisory' AND pid = pg_backend_pid()
    AND classid = 1718775662 AND objid = 1919052900 AND objsubid = 2 AND granted
)
