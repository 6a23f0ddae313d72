-- read_projection_check_all.sql for some places ($2) only: their events up to position $1
-- (part 0) before their rows of segments (part 1).
SELECT place_id, 0 AS part, position AS n, commit_position, payload AS text,
       NULL::timestamptz AS valid_from, NULL::timestamptz AS valid_to, NULL::bigint AS known_to,
       NULL::text AS controller, NULL::text AS status, NULL::text AS status_by,
       NULL::boolean AS disputed, NULL::smallint AS confidence, NULL::text AS basis
FROM events
WHERE position <= $1 AND place_id = ANY($2::text[])
UNION ALL
SELECT place_id, 1, known_from, NULL, body, valid_from, valid_to, known_to, controller, status,
       status_by, disputed, confidence, basis
FROM segments
WHERE place_id = ANY($2::text[])
ORDER BY place_id, part, n, valid_from
