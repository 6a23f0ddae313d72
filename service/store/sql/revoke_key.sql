-- Revoke a live key by name; returns it when there was one.
UPDATE api_keys SET revoked_at = clock_timestamp()
WHERE name = $1 AND revoked_at IS NULL
RETURNING id
