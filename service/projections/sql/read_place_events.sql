-- Every event about a place up to a position, in position order.
SELECT position, id, type, recorded_at, source_key, payload
FROM events
WHERE place_id = $1 AND position <= $2
ORDER BY position
