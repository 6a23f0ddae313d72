-- Both tables the swap renames, to this transaction alone, before the swap's function runs
-- (its own lock_timeout is 2 s: it waits for nothing once these are held). Taken under the
-- head lock with a short lock_timeout (set_local_lock_timeout.sql): reads in flight make it
-- fail fast, and the rebuild lets go of everything and tries again later, instead of
-- holding appends and queueing every new read behind it while they finish. The owner's
-- function (migration 0007): LOCK TABLE in this mode needs UPDATE or DELETE on the table,
-- which the service role has only on the twin.
SELECT frontline_lock_segments_for_swap()
