-- The events that link to one event: relates_to read in reverse. event_links is the index;
-- each row comes with its linking event's payload (same id, same position), so that only
-- links the payload states are served.
SELECT l.id, l.position, l.relation, e.payload
FROM event_links AS l
JOIN events AS e ON e.id = l.id AND e.position = l.position
WHERE l.target = $1
ORDER BY l.position, l.relation
