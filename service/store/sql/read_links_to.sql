-- The events that link to one event: relates_to read in reverse.
SELECT id, position, relation FROM event_links WHERE target = $1 ORDER BY position, relation
