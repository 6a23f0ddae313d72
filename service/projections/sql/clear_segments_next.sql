-- Empty the twin a rebuild fills, and drop its indexes until it is filled (the owner's
-- function: TRUNCATE and DROP INDEX are the owner's rights).
SELECT frontline_clear_segments_next()
