SELECT policy, policy_version, position FROM projection_state WHERE id = 1
