-- Whether no worker of any rebuild still writes to the twin: the workers hold this lock
-- shared ('fron', 'rbwk') for as long as their sessions live, so a rebuild that takes it
-- exclusively (and lets it go at once) may empty the twin. A rebuild whose own session was
-- ended (its lock with it) may still have workers writing: the next waits for them to end.
SELECT pg_try_advisory_lock(1718775662, 1919055723)
