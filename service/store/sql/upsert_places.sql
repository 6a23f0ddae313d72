-- Register places first named by this commit, and bring known ones up to date: the version,
-- new aliases (a new name counts as an alias), and a point or details they lacked.
INSERT INTO places AS p (id, name, kind, lat, lon, parent, aliases, precision, version,
                         first_position, last_position)
SELECT id, name, kind, lat, lon, parent, aliases, precision, version, first_position,
       last_position
FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[],
            $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[])
     AS u(id, name, kind, lat, lon, parent, aliases_text, precision, version, first_position,
          last_position)
     CROSS JOIN LATERAL (
       SELECT coalesce(array_agg(a ORDER BY a), '{}') AS aliases
       FROM unnest(string_to_array(u.aliases_text, E'\x1f')) AS a
       WHERE a <> '' AND a <> u.name
     ) AS aa
ON CONFLICT (id) DO UPDATE SET
  version = excluded.version,
  last_position = excluded.last_position,
  kind = coalesce(p.kind, excluded.kind),
  lat = coalesce(p.lat, excluded.lat),
  lon = coalesce(p.lon, excluded.lon),
  parent = coalesce(p.parent, excluded.parent),
  precision = coalesce(p.precision, excluded.precision),
  aliases = (
    SELECT coalesce(array_agg(DISTINCT a ORDER BY a), '{}')
    FROM unnest(p.aliases || excluded.aliases || ARRAY[excluded.name]) AS a
    WHERE a <> p.name
  )
