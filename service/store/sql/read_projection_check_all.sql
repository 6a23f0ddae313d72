-- The log up to position $1 and every row of segments, place by place, for verify's refold
-- of the projections: a place's events (part 0, in position order) come before its rows
-- (part 1, by known_from and valid_from). A place with rows and no event comes alone. The
-- registry streams ('side:...') are read apart (read_registry.sql).
SELECT place_id, 0 AS part, position AS n, commit_position, payload AS text,
       NULL::timestamptz AS valid_from, NULL::timestamptz AS valid_to, NULL::bigint AS known_to,
       NULL::text AS controller, NULL::text AS status, NULL::text AS status_by,
       NULL::boolean AS disputed, NULL::smallint AS confidence, NULL::text AS basis
FROM events
WHERE position <= $1 AND strpos(place_id, ':') = 0
UNION ALL
SELECT place_id, 1, known_from, NULL, body, valid_from, valid_to, known_to, controller, status,
       status_by, disputed, confidence, basis
FROM segments
ORDER BY place_id, part, n, valid_from
