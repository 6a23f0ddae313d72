-- One page of places in id order after $4: those with an event known at position $1 that
-- carries casualty figures, whose valid interval meets [$2, $3] (a null end: open), and
-- whose point is in the box ($5 west, $6 south, $7 east, $8 north; null: anywhere; a place
-- without a point is in no box). At most $9 places.
SELECT DISTINCT e.place_id
FROM events AS e
JOIN places AS p ON p.id = e.place_id
WHERE e.position <= $1::bigint
  AND ($2::timestamptz IS NULL OR e.valid_to > $2::timestamptz)
  AND ($3::timestamptz IS NULL OR e.valid_from <= $3::timestamptz)
  AND (e.type = 'casualties' OR strpos(e.payload, '"casualties":{') > 0)
  AND e.place_id > $4::text
  AND (
    $5::float8 IS NULL
    OR point(p.lon, p.lat) <@ box(point($5::float8, $6::float8), point($7::float8, $8::float8))
  )
ORDER BY e.place_id
LIMIT $9::int
