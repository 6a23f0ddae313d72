-- The whole log, place by place, in position order: what a rebuild reads (its workers read
-- it range by range, read_log_range_for_rebuild.sql); the rebuild benchmark's baseline reads
-- it whole with one cursor. Registry streams ('side:...') are read apart
-- (read_registry_for_rebuild.sql).
SELECT place_id, commit_position, payload
FROM events
WHERE strpos(place_id, ':') = 0
ORDER BY place_id, position
