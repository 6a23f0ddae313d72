-- Every column of the events in a range of positions, in position order (the verifier
-- recomputes digests, records and hashes from them).
SELECT position, id, place_id, place_version, type, source_key, valid_from, valid_to,
       recorded_at, commit_position, submitter, payload, payload_digest, record, prev_hash, hash
FROM events
WHERE position BETWEEN $1 AND $2
ORDER BY position
