-- Close the current rows a commit replaces: from this commit on they are no longer known.
UPDATE segments AS s SET known_to = $1
FROM unnest($2::text[], $3::timestamptz[]) AS c(place_id, valid_from)
WHERE s.place_id = c.place_id AND s.valid_from = c.valid_from AND s.known_to IS NULL
