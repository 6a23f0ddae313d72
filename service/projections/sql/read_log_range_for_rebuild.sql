-- The events of the places whose id is in [$1, $2) (NULL: unbounded) up to position $3,
-- place by place, in position order: one worker's share of a rebuild. Registry streams
-- ('side:...') are read apart (read_registry_for_rebuild.sql).
SELECT place_id, commit_position, payload
FROM events
WHERE strpos(place_id, ':') = 0
  AND ($1::text IS NULL OR place_id >= $1::text)
  AND ($2::text IS NULL OR place_id < $2::text)
  AND position <= $3
ORDER BY place_id, position
