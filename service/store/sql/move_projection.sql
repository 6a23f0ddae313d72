-- The position up to which the projection follows the log.
UPDATE projection_state SET position = $1, policy = $2, policy_version = $3 WHERE id = 1
