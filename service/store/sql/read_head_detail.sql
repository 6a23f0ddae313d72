-- The head, and when the commit ending there was recorded.
SELECT h.position, h.hash, e.recorded_at
FROM log_head AS h
LEFT JOIN events AS e ON e.position = h.position
WHERE h.id = 1
