-- For some places, as the log stood at position $2: the registered name (the first event's,
-- or the id when it gave none, as the registry does) and the first point any event up to $2
-- gave (what the registry held then). One probe of events_place_position per place, and a
-- second only for a place the registry knows a point of.
--
-- jsonb refuses a whole document holding the escape \u0000 (a NUL, which an event's quote or
-- notes may hold), so such a payload is read with each NUL escape (one not itself escaped: an
-- even run of backslashes before it) as U+FFFD; the fields read here cannot hold a NUL.
SELECT ids.place_id,
       coalesce(f.name, ids.place_id) AS name,
       p.lat,
       p.lon
FROM unnest($1::text[]) AS ids(place_id)
JOIN places AS pl ON pl.id = ids.place_id
LEFT JOIN LATERAL (
  SELECT nullif(d.doc -> 'place' ->> 'name', '') AS name
  FROM events AS e,
       LATERAL (SELECT (CASE WHEN strpos(e.payload, '\u0000') > 0
                             THEN regexp_replace(e.payload, '(?<!\\)((?:\\\\)*)\\u0000', '\1\\ufffd', 'g')
                             ELSE e.payload END)::jsonb AS doc) AS d
  WHERE e.place_id = ids.place_id AND e.position <= $2
  ORDER BY e.position
  LIMIT 1
) AS f ON true
LEFT JOIN LATERAL (
  SELECT (d.doc -> 'place' ->> 'lat')::float8 AS lat,
         (d.doc -> 'place' ->> 'lon')::float8 AS lon
  FROM events AS x,
       LATERAL (SELECT (CASE WHEN strpos(x.payload, '\u0000') > 0
                             THEN regexp_replace(x.payload, '(?<!\\)((?:\\\\)*)\\u0000', '\1\\ufffd', 'g')
                             ELSE x.payload END)::jsonb AS doc) AS d
  WHERE pl.lat IS NOT NULL
    AND x.place_id = ids.place_id AND x.position <= $2
    AND d.doc -> 'place' ? 'lat'
  ORDER BY x.position
  LIMIT 1
) AS p ON true
