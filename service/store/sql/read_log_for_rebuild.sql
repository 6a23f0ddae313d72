-- The whole log, place by place, in position order, for a rebuild of the projection.
SELECT place_id, commit_position, payload
FROM events
ORDER BY place_id, position
