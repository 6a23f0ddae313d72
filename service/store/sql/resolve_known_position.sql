-- known_at=position:N: the last commit whose last position is <= N (0 when none is).
SELECT coalesce(max(commit_position), 0) AS position
FROM (
  SELECT commit_position FROM events
  WHERE position <= $1 AND commit_position <= $1
  ORDER BY position DESC
  LIMIT 1
) AS last
