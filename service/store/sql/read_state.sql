-- Every place's segment at valid time $1 as known at commit position $2, with filters, one
-- page in place id order after the cursor $10.
SELECT s.place_id AS id, p.name, p.kind, p.lat, p.lon, p.parent, p.aliases, p.precision, s.body
FROM segments AS s
JOIN places AS p ON p.id = s.place_id
WHERE tstzrange(s.valid_from, s.valid_to, '[)') @> $1::timestamptz
  AND int8range(s.known_from, s.known_to, '[)') @> $2::bigint
  AND ($3::float8 IS NULL OR (p.lon BETWEEN $3 AND $5 AND p.lat BETWEEN $4 AND $6))
  AND ($7::text IS NULL OR s.controller = $7)
  AND ($8::text IS NULL OR s.status = $8)
  AND ($9::boolean IS NULL OR s.disputed = $9)
  AND s.place_id > $10
ORDER BY s.place_id
LIMIT $11
