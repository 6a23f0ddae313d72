SELECT position, hash FROM log_head WHERE id = 1
