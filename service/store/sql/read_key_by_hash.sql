-- The live key with this hash (none when unknown or revoked).
SELECT id, name, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL
