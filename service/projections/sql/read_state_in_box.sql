-- The places whose point is in the box ($3 west, $4 south, $5 east, $6 north), each with its
-- segment at valid time $1 as known at commit position $2, filtered, one page in place id
-- order after the cursor $10. One probe of segments_place_valid per place in the box
-- (migration 0006; as in read_state.sql: the latest row starting at or before $1 known at
-- $2, kept if it covers $1), so the cost follows the box, not the log.
SELECT p.id, p.name, p.kind, p.lat, p.lon, p.parent, p.aliases, p.precision, s.body
FROM places AS p
CROSS JOIN LATERAL (
  SELECT s.body, s.valid_to, s.controller, s.status, s.disputed
  FROM segments AS s
  WHERE s.place_id = p.id
    AND s.valid_from <= $1::timestamptz
    AND s.known_from <= $2::bigint
    AND coalesce(s.known_to, 9223372036854775807) > $2::bigint
  ORDER BY s.valid_from DESC
  LIMIT 1
) AS s
WHERE point(p.lon, p.lat) <@ box(point($3::float8, $4::float8), point($5::float8, $6::float8))
  AND p.id > $10
  AND (s.valid_to IS NULL OR s.valid_to > $1::timestamptz)
  AND ($7::text IS NULL OR s.controller = $7)
  AND ($8::text IS NULL OR s.status = $8)
  AND ($9::boolean IS NULL OR s.disputed = $9)
ORDER BY p.id
LIMIT $11
