-- A page of the log after a position, optionally about one place, of one type, by one source.
SELECT position, id, place_id, place_version, type, recorded_at, commit_position, hash,
       prev_hash, payload_digest, payload
FROM events
WHERE position > $1
  AND ($2::text IS NULL OR place_id = $2)
  AND ($3::text IS NULL OR type = $3)
  AND ($4::text IS NULL OR source_key = $4)
ORDER BY position
LIMIT $5
