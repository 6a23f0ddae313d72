UPDATE log_head SET position = $1, hash = $2 WHERE id = 1
