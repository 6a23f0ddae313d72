-- What a group needs to know from the log, in one round trip: the stored events among its
-- ids and link targets ($1), with who appended them (only their submitter may withdraw
-- them), the versions of its places ($2), and the registry events after position $3 (what
-- the store's copy of the side registry has not read yet; events_registry, migration 0008,
-- finds them without reading the log).
SELECT 'event' AS kind, id, position, place_id, place_version, recorded_at, commit_position,
       payload_digest, source_key, submitter, NULL::bigint AS version, NULL::text AS payload
FROM events
WHERE id = ANY($1::uuid[])
UNION ALL
SELECT 'place', NULL, NULL, id, NULL, NULL, NULL, NULL, NULL, NULL, version, NULL
FROM places
WHERE id = ANY($2::text[])
UNION ALL
SELECT 'registry', NULL, position, place_id, place_version, NULL, commit_position, NULL, NULL,
       submitter, NULL, payload
FROM events
WHERE strpos(place_id, ':') > 0 AND position > $3
