-- segments_next becomes segments and segments becomes segments_next, indexes included (the
-- owner's function; run under the head lock, in the transaction that moves the projection).
SELECT frontline_swap_segments()
