-- Take the log's single head row for this transaction: one appender at a time, so that
-- positions are dense and commit order equals position order (a reader following
-- after=position can never skip an event that commits later with a smaller position).
SELECT position, hash FROM log_head WHERE id = 1 FOR UPDATE
