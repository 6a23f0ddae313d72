-- Taken after lock_head, so recorded_at never decreases along positions.
SELECT clock_timestamp()
