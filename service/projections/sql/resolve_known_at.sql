-- What known_at names, resolved in one read, for every answer that takes it (the front's
-- reads and the exports): the commit position (known_at=position:N, $1: the last commit
-- whose last position is <= N; known_at=<timestamp>, $2: the last commit recorded at or
-- before it; neither: the log's head when $3 asks for the log, else the position the
-- projections reached; 0 when no commit is), with $3 the chain hash at it (the zero hash at
-- 0), and the projections' policy and position. Only the branch of a CASE that applies is
-- run: a read of the front at the latest position touches neither the events nor the head
-- row that every commit updates.
WITH state AS (
  SELECT policy, policy_version, position FROM projection_state WHERE id = 1
), known AS (
  SELECT CASE
    WHEN $1::bigint IS NOT NULL THEN (
      SELECT coalesce(max(commit_position), 0)
      FROM (
        SELECT commit_position FROM events
        WHERE position <= $1::bigint AND commit_position <= $1::bigint
        ORDER BY position DESC
        LIMIT 1
      ) AS last
    )
    WHEN $2::timestamptz IS NOT NULL THEN (
      SELECT coalesce(max(commit_position), 0)
      FROM (
        SELECT commit_position FROM events
        WHERE recorded_at <= $2::timestamptz
        ORDER BY recorded_at DESC, position DESC
        LIMIT 1
      ) AS last
    )
    WHEN $3::boolean THEN (SELECT position FROM log_head WHERE id = 1)
    ELSE (SELECT position FROM state)
  END AS position
)
SELECT known.position,
       CASE WHEN $3::boolean THEN
         coalesce((SELECT hash FROM events WHERE position = known.position),
                  decode(repeat('00', 32), 'hex'))
       END AS hash,
       state.policy,
       state.policy_version,
       state.position AS projected
FROM known, state
