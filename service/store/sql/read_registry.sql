-- The registry events up to position $1, in position order: the side registry's history (a
-- rebuild reads each place's events through it; GET /v1/sides folds it). events_registry
-- (migration 0008) holds them.
SELECT position, commit_position, place_version, submitter, payload
FROM events
WHERE strpos(place_id, ':') > 0 AND position <= $1
ORDER BY position
