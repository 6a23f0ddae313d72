-- How many events some places hold together (each place's version is its event count).
SELECT coalesce(sum(version), 0)::bigint
FROM places
WHERE id = ANY($1::text[])
