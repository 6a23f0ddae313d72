-- Register places first named by this commit, and bring known ones up to date: the version,
-- new aliases (every name given counts as an alias, except the registered name itself), and
-- a point or details they lacked. Appenders hold the head lock, so no other transaction
-- writes places meanwhile: an UPDATE of the known ones and an INSERT of the rest suffice.
-- The same statement moves the head to the commit's last position and hash ($12, $13): one
-- round trip less per commit.
WITH moved AS (
  UPDATE log_head SET position = $12, hash = $13 WHERE id = 1
),
given AS (
  SELECT id, name, kind, lat, lon, parent, string_to_array(aliases_text, E'\x1f') AS names,
         precision, version, first_position, last_position
  FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[],
              $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[])
       AS u(id, name, kind, lat, lon, parent, aliases_text, precision, version,
            first_position, last_position)
),
updated AS (
  UPDATE places AS p SET
    version = g.version,
    last_position = g.last_position,
    kind = coalesce(p.kind, g.kind),
    lat = coalesce(p.lat, g.lat),
    lon = coalesce(p.lon, g.lon),
    parent = coalesce(p.parent, g.parent),
    precision = coalesce(p.precision, g.precision),
    aliases = (
      SELECT coalesce(array_agg(DISTINCT a ORDER BY a), '{}')
      FROM unnest(p.aliases || g.names) AS a
      WHERE a <> '' AND a <> p.name
    )
  FROM given AS g
  WHERE p.id = g.id
  RETURNING p.id
)
INSERT INTO places (id, name, kind, lat, lon, parent, aliases, precision, version,
                    first_position, last_position)
SELECT g.id, g.name, g.kind, g.lat, g.lon, g.parent,
       (SELECT coalesce(array_agg(DISTINCT a ORDER BY a), '{}')
        FROM unnest(g.names) AS a WHERE a <> '' AND a <> g.name),
       g.precision, g.version, g.first_position, g.last_position
FROM given AS g
WHERE g.id NOT IN (SELECT id FROM updated)
