-- segments_next becomes segments and segments becomes segments_next, indexes and write
-- grants included, and the projection moves to position $1 under policy $2 version $3 (the
-- owner's function; run under the head lock, $1 being the head).
SELECT frontline_swap_segments($1, $2, $3)
