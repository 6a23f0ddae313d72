SELECT position, id, place_id, place_version, type, recorded_at, commit_position, hash,
       prev_hash, payload_digest, payload, submitter
FROM events
WHERE id = $1
