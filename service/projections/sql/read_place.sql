SELECT id, name, kind, lat, lon, parent, aliases, precision, version, first_position,
       last_position
FROM places
WHERE id = $1
