-- A place's timeline as known at commit position $2.
SELECT body
FROM segments
WHERE int4range(hashtext(place_id), hashtext(place_id), '[]') @> hashtext($1::text)
  AND place_id = $1
  AND int8range(known_from, known_to, '[)') @> $2::bigint
ORDER BY valid_from
