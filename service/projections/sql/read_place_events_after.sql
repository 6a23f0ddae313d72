-- The events of some places, each after a place version already held in memory.
SELECT e.place_id, e.place_version, e.commit_position, e.payload
FROM unnest($1::text[], $2::bigint[]) AS w(place_id, after_version)
JOIN events AS e ON e.place_id = w.place_id AND e.place_version > w.after_version
ORDER BY e.place_id, e.place_version
