-- known_at=<timestamp>: the last commit recorded at or before it (0 when none is).
SELECT coalesce(max(commit_position), 0) AS position
FROM (
  SELECT commit_position FROM events
  WHERE recorded_at <= $1
  ORDER BY recorded_at DESC, position DESC
  LIMIT 1
) AS last
