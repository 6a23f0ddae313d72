-- A new API key (its hash only).
INSERT INTO api_keys (id, name, role, key_hash) VALUES ($1, $2, $3, $4)
RETURNING created_at
