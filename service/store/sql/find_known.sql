-- What a group needs to know from the log, in one round trip: the stored events among its
-- ids and link targets ($1), with who appended them (only their submitter may withdraw
-- them), and the versions of its places ($2).
SELECT 'event' AS kind, id, position, place_id, place_version, recorded_at, commit_position,
       payload_digest, source_key, submitter, NULL::bigint AS version
FROM events
WHERE id = ANY($1::uuid[])
UNION ALL
SELECT 'place', NULL, NULL, id, NULL, NULL, NULL, NULL, NULL, NULL, version
FROM places
WHERE id = ANY($2::text[])
