-- The chain hash stored at one position (no row when it is missing).
SELECT hash FROM events WHERE position = $1
