SELECT id, version FROM places WHERE id = ANY($1::text[])
