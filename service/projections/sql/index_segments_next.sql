-- Index the filled twin and refresh its statistics before it becomes segments (the owner's
-- function: building the indexes once costs less than keeping them up during the COPYs).
SELECT frontline_index_segments_next()
