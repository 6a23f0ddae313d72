-- The chain hash at a position (the zero hash at 0).
SELECT coalesce((SELECT hash FROM events WHERE position = $1), decode(repeat('00', 32), 'hex'))
