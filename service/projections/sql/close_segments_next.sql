-- Close current rows of the twin, each at its own commit (a rebuild catching up, commit by
-- commit, with places it holds in memory).
UPDATE segments_next AS s SET known_to = c.known_to
FROM unnest($1::text[], $2::timestamptz[], $3::bigint[]) AS c(place_id, valid_from, known_to)
WHERE s.place_id = c.place_id AND s.valid_from = c.valid_from AND s.known_to IS NULL
