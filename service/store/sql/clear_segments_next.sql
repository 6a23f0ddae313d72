-- Empty the twin a rebuild fills (a SECURITY DEFINER function: TRUNCATE is the owner's).
SELECT frontline_clear_segments_next()
