-- The places whose point is in the box ($3 west, $4 south, $5 east, $6 north), each with its
-- segment at valid time $1 as known at commit position $2, filtered, one page in place id
-- order after the cursor $10. One probe of segments_place_bitemporal per place in the box,
-- so the cost follows the box, not the log.
SELECT p.id, p.name, p.kind, p.lat, p.lon, p.parent, p.aliases, p.precision, s.body
FROM places AS p
CROSS JOIN LATERAL (
  SELECT s.body
  FROM segments AS s
  WHERE int8range(hashtext(s.place_id)::int8, hashtext(s.place_id)::int8, '[]') @> hashtext(p.id)::int8
    AND s.place_id = p.id
    AND tstzrange(s.valid_from, s.valid_to, '[)') @> $1::timestamptz
    AND int8range(s.known_from, s.known_to, '[)') @> $2::bigint
    AND ($7::text IS NULL OR s.controller = $7)
    AND ($8::text IS NULL OR s.status = $8)
    AND ($9::boolean IS NULL OR s.disputed = $9)
) AS s
WHERE point(p.lon, p.lat) <@ box(point($3::float8, $4::float8), point($5::float8, $6::float8))
  AND p.id > $10
ORDER BY p.id
LIMIT $11
