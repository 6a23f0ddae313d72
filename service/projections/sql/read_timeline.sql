-- A place's timeline as known at commit position $2.
SELECT body
FROM segments
WHERE int8range(hashtext(place_id)::int8, hashtext(place_id)::int8, '[]') @> hashtext($1::text)::int8
  AND place_id = $1
  AND int8range(known_from, known_to, '[)') @> $2::bigint
ORDER BY valid_from
