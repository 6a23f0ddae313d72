-- For some places, as the log stood at position $2: the registered name (the first event's)
-- and the first point any event up to $2 gave (what the registry held then).
SELECT DISTINCT ON (e.place_id)
       e.place_id,
       e.payload::jsonb -> 'place' ->> 'name' AS name,
       p.lat,
       p.lon
FROM events AS e
LEFT JOIN LATERAL (
  SELECT (x.payload::jsonb -> 'place' ->> 'lat')::float8 AS lat,
         (x.payload::jsonb -> 'place' ->> 'lon')::float8 AS lon
  FROM events AS x
  WHERE x.place_id = e.place_id AND x.position <= $2
    AND x.payload::jsonb -> 'place' ? 'lat'
  ORDER BY x.position
  LIMIT 1
) AS p ON true
WHERE e.place_id = ANY($1::text[]) AND e.position <= $2
ORDER BY e.place_id, e.position
