-- The places that commits after position $1, up to $2, appended to.
SELECT DISTINCT place_id
FROM events
WHERE position > $1 AND position <= $2
