-- A rebuild worker's session: it writes to the twin, which no other rebuild may empty
-- while it lives (try_rebuild_workers_lock.sql). Held until the session ends.
SELECT pg_advisory_lock_shared(1718775662, 1919055723)
