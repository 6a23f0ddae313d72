-- The streams that commits after position $1, up to $2, appended to: places, and registry
-- streams (the rebuild then adds the places whose names those registry edits remap).
SELECT DISTINCT place_id
FROM events
WHERE position > $1 AND position <= $2
