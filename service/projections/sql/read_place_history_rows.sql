-- The rows of a place's timeline that commits $4 (between $2 and $3) inserted or closed (a
-- row closed at $2 was last known at $2 - 1: its known range is half-open).
SELECT known_from, known_to, body
FROM segments
WHERE int8range(hashtext(place_id)::int8, hashtext(place_id)::int8, '[]') @> hashtext($1::text)::int8
  AND place_id = $1
  AND int8range(known_from, known_to, '[)') && int8range($2::bigint - 1, $3::bigint, '[]')
  AND (known_from = ANY($4::bigint[]) OR known_to = ANY($4::bigint[]))
ORDER BY valid_from
