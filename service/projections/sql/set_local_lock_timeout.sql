-- How long the statements of this transaction may wait for a lock, in milliseconds
-- (set_config with is_local: the same as SET LOCAL, with the value as a parameter).
SELECT set_config('lock_timeout', $1, true)
