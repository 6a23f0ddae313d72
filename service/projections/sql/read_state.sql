-- Every place's segment at valid time $1 as known at commit position $2, with filters, one
-- page in place id order after the cursor $6: places in id order, one probe of
-- segments_place_valid each (migration 0006), until the page is full. The probe takes the
-- latest row starting at or before $1 among those known at $2 (a place's rows known at one
-- position never overlap in valid time), and keeps it if it still covers $1; the filters
-- apply to that row, never to an older one.
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
WHERE p.id > $6
  AND (s.valid_to IS NULL OR s.valid_to > $1::timestamptz)
  AND ($3::text IS NULL OR s.controller = $3)
  AND ($4::text IS NULL OR s.status = $4)
  AND ($5::boolean IS NULL OR s.disputed = $5)
ORDER BY p.id
LIMIT $7
