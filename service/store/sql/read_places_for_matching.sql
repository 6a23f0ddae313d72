-- Every registered place as the importers' place matching needs it (name, aliases, point),
-- read once per import.
SELECT id, name, aliases, lat, lon
FROM places
ORDER BY id
