-- The events about a place of its first $3 commits after commit position $2 (a commit
-- position is a cursor: every event of a later commit has a later position).
WITH commits AS (
  SELECT DISTINCT commit_position
  FROM events
  WHERE place_id = $1 AND position > $2
  ORDER BY commit_position
  LIMIT $3
)
SELECT e.position, e.id, e.type, e.commit_position, e.recorded_at, e.payload
FROM events AS e
WHERE e.place_id = $1 AND e.position > $2
  AND e.commit_position IN (SELECT commit_position FROM commits)
ORDER BY e.position
