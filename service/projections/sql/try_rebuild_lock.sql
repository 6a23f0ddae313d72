-- One rebuild at a time across every process: a session advisory lock, held until the
-- rebuild's own connection closes (the key is 'fron', 'rbld' in ASCII, as two int4).
SELECT pg_try_advisory_lock(1718775662, 1919052900)
