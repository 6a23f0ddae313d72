SELECT id, position, place_id, place_version, recorded_at, commit_position, payload_digest,
       source_key
FROM events
WHERE id = ANY($1::uuid[])
