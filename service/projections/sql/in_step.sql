-- Whether the projection stands at position $1 under policy $2 version $3 (at position 0 it
-- holds no row, so it is in step under any policy): a commit after it may be projected.
SELECT EXISTS (
  SELECT FROM projection_state
  WHERE id = 1 AND position = $1 AND (position = 0 OR (policy = $2 AND policy_version = $3))
)
