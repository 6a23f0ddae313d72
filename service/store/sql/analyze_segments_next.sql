-- Statistics for the filled twin before it becomes segments (the owner's function).
SELECT frontline_analyze_segments_next()
