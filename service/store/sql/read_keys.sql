-- Every key, never its hash.
SELECT id, name, role, created_at, revoked_at FROM api_keys ORDER BY created_at, name
