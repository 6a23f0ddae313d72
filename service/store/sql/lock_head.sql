-- Take the log's single head row for this transaction: one appender at a time, so that
-- positions are dense and commit order equals position order (a reader following
-- after=position can never skip an event that commits later with a smaller position).
-- The owner's function (migration 0007) reads the clock once the lock is held: recorded_at
-- never decreases along positions.
SELECT position, hash, now FROM frontline_lock_head()
