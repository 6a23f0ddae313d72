-- The registered places an events filter names, in id order: with $1, the place $1 and every
-- place whose parent chain reaches it (its country's or region's places: one probe of
-- places_parent per level; UNION drops repeats, so a cycle of parents ends); with a box ($2
-- west, $3 south, $4 east, $5 north), the places located in it (places_point); both given:
-- both hold.
WITH RECURSIVE inside (id) AS (
  SELECT $1::text WHERE $1::text IS NOT NULL
  UNION
  SELECT p.id FROM places AS p JOIN inside ON p.parent = inside.id
)
SELECT p.id
FROM places AS p
WHERE ($1::text IS NULL OR p.id IN (SELECT id FROM inside))
  AND ($2::float8 IS NULL
       OR point(p.lon, p.lat) <@ box(point($2::float8, $3::float8), point($4::float8, $5::float8)))
ORDER BY p.id
