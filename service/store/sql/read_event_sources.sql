-- The source name of some events.
SELECT id, payload::jsonb -> 'source' ->> 'name' AS source
FROM events
WHERE id = ANY($1::uuid[])
