-- What a group needs to know from the log, in one round trip: the stored events among its
-- ids and link targets ($1), and the versions of its places ($2).
SELECT 'event' AS kind, id, position, place_id, place_version, recorded_at, commit_position,
       payload_digest, source_key, NULL::bigint AS version
FROM events
WHERE id = ANY($1::uuid[])
UNION ALL
SELECT 'place', NULL, NULL, id, NULL, NULL, NULL, NULL, NULL, version
FROM places
WHERE id = ANY($2::text[])
