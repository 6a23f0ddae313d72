-- For some places, as the log stood at position $2: the registered name (the first event's,
-- or the id when it gave none, as the registry does) and the first point any event up to $2
-- gave (what the registry held then). One probe of events_place_position per place, and a
-- second only for a place the registry knows a point of.
SELECT ids.place_id,
       coalesce(f.name, ids.place_id) AS name,
       p.lat,
       p.lon
FROM unnest($1::text[]) AS ids(place_id)
JOIN places AS pl ON pl.id = ids.place_id
LEFT JOIN LATERAL (
  SELECT nullif(e.payload::jsonb -> 'place' ->> 'name', '') AS name
  FROM events AS e
  WHERE e.place_id = ids.place_id AND e.position <= $2
  ORDER BY e.position
  LIMIT 1
) AS f ON true
LEFT JOIN LATERAL (
  SELECT (x.payload::jsonb -> 'place' ->> 'lat')::float8 AS lat,
         (x.payload::jsonb -> 'place' ->> 'lon')::float8 AS lon
  FROM events AS x
  WHERE pl.lat IS NOT NULL
    AND x.place_id = ids.place_id AND x.position <= $2
    AND x.payload::jsonb -> 'place' ? 'lat'
  ORDER BY x.position
  LIMIT 1
) AS p ON true
