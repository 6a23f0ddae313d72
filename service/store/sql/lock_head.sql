-- Take the log's single head row for this transaction: one appender at a time, so that
-- positions are dense and commit order equals position order (a reader following
-- after=position can never skip an event that commits later with a smaller position).
-- An UPDATE (not SELECT ... FOR UPDATE) so that RETURNING reads the clock after the lock is
-- held: recorded_at never decreases along positions.
UPDATE log_head SET position = position WHERE id = 1
RETURNING position, hash, clock_timestamp() AS now
