-- The events of some place streams ($1) up to position $2, in position order, each with its
-- stream: the log of places a merge joined (a timeline reads the streams merged into it).
SELECT place_id, position, commit_position, payload
FROM events
WHERE place_id = ANY($1::text[]) AND position <= $2
ORDER BY position
