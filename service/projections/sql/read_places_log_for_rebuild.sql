-- The events of some places, each after a position ($2, 0: all) and up to position $3,
-- place by place, in position order: a rebuild catching up with appends.
SELECT e.place_id, e.commit_position, e.payload
FROM unnest($1::text[], $2::bigint[]) AS w(place_id, after_position)
JOIN events AS e ON e.place_id = w.place_id AND e.position > w.after_position
WHERE e.position <= $3
ORDER BY e.place_id, e.position
