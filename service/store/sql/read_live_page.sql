-- The next page of the whole log for the live hub, with what live filters match on.
SELECT position, id, place_id, place_version, type, recorded_at, commit_position, hash,
       prev_hash, payload_digest, payload, source_key
FROM events
WHERE position > $1
ORDER BY position
LIMIT $2
