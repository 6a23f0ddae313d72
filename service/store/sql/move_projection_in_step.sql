-- Move the projection to commit $1 only if it was in step just before it: at the position
-- $2 that preceded the commit, under policy $3 version $4 (at position 0 it holds no row, so
-- it is in step under any policy, and takes this one). Otherwise (rows of another policy,
-- or a log appended to without projections) nothing moves: the rows are stale and only a
-- rebuild brings them back, so an append must not write rows among them.
UPDATE projection_state SET position = $1, policy = $3, policy_version = $4
WHERE id = 1 AND position = $2 AND (position = 0 OR (policy = $3 AND policy_version = $4))
