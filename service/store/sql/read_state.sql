-- Every place's segment at valid time $1 as known at commit position $2, with filters, one
-- page in place id order after the cursor $6: places in id order, one probe of
-- segments_place_bitemporal each, until the page is full.
SELECT p.id, p.name, p.kind, p.lat, p.lon, p.parent, p.aliases, p.precision, s.body
FROM places AS p
CROSS JOIN LATERAL (
  SELECT s.body
  FROM segments AS s
  WHERE int8range(hashtext(s.place_id)::int8, hashtext(s.place_id)::int8, '[]') @> hashtext(p.id)::int8
    AND s.place_id = p.id
    AND tstzrange(s.valid_from, s.valid_to, '[)') @> $1::timestamptz
    AND int8range(s.known_from, s.known_to, '[)') @> $2::bigint
    AND ($3::text IS NULL OR s.controller = $3)
    AND ($4::text IS NULL OR s.status = $4)
    AND ($5::boolean IS NULL OR s.disputed = $5)
) AS s
WHERE p.id > $6
ORDER BY p.id
LIMIT $7
