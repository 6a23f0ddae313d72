-- The places that commits after position $1, up to $2, appended to; and, when those commits
-- stated side registry entries, every place whose events up to $2 use a name any statement
-- of those sides gave (their id or an alias, as stated then or earlier: an alias added or
-- removed may change how those places fold). Names are slugs: see read_places_naming.sql.
WITH touched AS (
  SELECT DISTINCT place_id
  FROM events
  WHERE position > $1 AND position <= $2
),
names AS (
  SELECT DISTINCT n.name
  FROM events AS r
  CROSS JOIN LATERAL (
    SELECT r.payload::jsonb ->> 'side'
    UNION ALL
    SELECT jsonb_array_elements_text(coalesce(r.payload::jsonb -> 'aliases', '[]'::jsonb))
  ) AS n(name)
  WHERE r.place_id IN (SELECT place_id FROM touched WHERE strpos(place_id, ':') > 0)
    AND r.position <= $2
)
SELECT place_id
FROM touched
WHERE strpos(place_id, ':') = 0
UNION
SELECT e.place_id
FROM events AS e
WHERE EXISTS (SELECT FROM names)
  AND strpos(e.place_id, ':') = 0
  AND e.position <= $2
  AND e.payload ~ ('"(side|opponent|alignment)":"(' || (SELECT string_agg(name, '|') FROM names) || ')"')
