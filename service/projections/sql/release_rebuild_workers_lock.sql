-- Let go of the lock of try_rebuild_workers_lock.sql once the twin is emptied (this
-- rebuild's own workers then take it shared).
SELECT pg_advisory_unlock(1718775662, 1919055723)
