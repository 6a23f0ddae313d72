-- The rows of some places' timelines as known now.
SELECT place_id, valid_from, known_from, body
FROM segments
WHERE place_id = ANY($1::text[]) AND known_to IS NULL
