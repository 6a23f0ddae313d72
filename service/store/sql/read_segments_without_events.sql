-- The first row of segments about a place with no event up to position $1 (a refold makes
-- no row for it), and how many such places there are.
SELECT place_id, valid_from, valid_to, known_from, known_to,
       count(*) OVER () AS places
FROM (
  SELECT DISTINCT ON (place_id) place_id, valid_from, valid_to, known_from, known_to
  FROM segments AS s
  WHERE NOT EXISTS (
    SELECT 1 FROM events AS e WHERE e.place_id = s.place_id AND e.position <= $1
  )
  ORDER BY place_id, known_from, valid_from
) AS stray
ORDER BY place_id
LIMIT 1
