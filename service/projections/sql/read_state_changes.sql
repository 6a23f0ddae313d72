-- Every change of the front inside the valid range [$1, $2] as known at commit position $3:
-- each boundary between consecutive segments of a place where controller, status, status_by
-- or disputed differ, and a place's first segment when it starts inside the range (a change
-- from no segment), with the segments on either side. One page in (place id, valid time)
-- order after the cursor ($4: its place, '' on the first page; $5: the valid time of its last
-- change listed, null on the first page), filtered by place ($6), by side ($7: it holds,
-- encircles or contests the place before or after the change) and by box ($8 west, $9 south,
-- $10 east, $11 north; null: anywhere); at most $12 rows.
--
-- Places in id order, one probe of segments_place_bitemporal each (the place's segments that
-- overlap the range as known at $3; for the cursor's place, those from the cursor on), until
-- the page is full: a page costs the places it visits, never the log's length. The probe
-- reaches one microsecond (the resolution of timestamptz) before $1, so that the segment
-- ending where the range starts is there to be the `before` of a change at $1. A cursor
-- past the range's end reads nothing more of its place (the lower bound is kept at most
-- $2: a range whose lower bound passes its upper one is an error, not an empty range).
--
-- The places are a sorted subquery so that every plan, the generic one of a prepared
-- statement included (its LIMIT unknown), reads them in id order and stops when the page is
-- full; left to itself, the generic plan probed every place and sorted (docs/benchmarks.md).
SELECT p.id, p.name, p.kind, p.lat, p.lon, p.parent, p.aliases, p.precision,
       c.at, c.before_body, c.after_body
FROM (
  SELECT q.id, q.name, q.kind, q.lat, q.lon, q.parent, q.aliases, q.precision
  FROM places AS q
  WHERE q.id >= $4
    AND ($6::text IS NULL OR q.id = $6)
    AND ($8::float8 IS NULL
         OR point(q.lon, q.lat) <@ box(point($8::float8, $9::float8), point($10::float8, $11::float8)))
  ORDER BY q.id
) AS p
CROSS JOIN LATERAL (
  SELECT a.at, a.before_body, a.after_body
  FROM (
    SELECT w.at, w.body AS after_body, w.controller, w.status, w.status_by, w.disputed,
           -- Timelines are contiguous; were one not, the segment before a gap is no `before`.
           CASE WHEN w.before_to = w.at THEN w.before_body END AS before_body,
           CASE WHEN w.before_to = w.at THEN w.before_controller END AS before_controller,
           CASE WHEN w.before_to = w.at THEN w.before_status END AS before_status,
           CASE WHEN w.before_to = w.at THEN w.before_status_by END AS before_status_by,
           CASE WHEN w.before_to = w.at THEN w.before_disputed END AS before_disputed
    FROM (
      SELECT s.valid_from AS at, s.body, s.controller, s.status, s.status_by, s.disputed,
             lag(s.valid_to) OVER w AS before_to,
             lag(s.body) OVER w AS before_body,
             lag(s.controller) OVER w AS before_controller,
             lag(s.status) OVER w AS before_status,
             lag(s.status_by) OVER w AS before_status_by,
             lag(s.disputed) OVER w AS before_disputed
      FROM segments AS s
      WHERE int8range(hashtext(s.place_id)::int8, hashtext(s.place_id)::int8, '[]') @> hashtext(p.id)::int8
        AND s.place_id = p.id
        AND tstzrange(s.valid_from, s.valid_to, '[)') && tstzrange(
              least(greatest($1::timestamptz - interval '1 microsecond',
                             CASE WHEN p.id = $4 THEN $5::timestamptz END),
                    $2::timestamptz),
              $2::timestamptz, '[]')
        AND int8range(s.known_from, s.known_to, '[)') @> $3::bigint
      WINDOW w AS (ORDER BY s.valid_from)
    ) AS w
    WHERE w.at >= $1 AND w.at <= $2
      AND (p.id <> $4 OR $5::timestamptz IS NULL OR w.at > $5)
  ) AS a
  -- status is never null, so a first segment (no `before`) always differs.
  WHERE (a.controller, a.status, a.status_by, a.disputed)
        IS DISTINCT FROM (a.before_controller, a.before_status, a.before_status_by, a.before_disputed)
    AND ($7::text IS NULL
         OR $7 IN (a.controller, a.status_by, a.before_controller, a.before_status_by))
  ORDER BY a.at
  LIMIT $12
) AS c
ORDER BY p.id, c.at
LIMIT $12
