-- A page of the log after position $1, in position order, selected by every filter given (a
-- NULL parameter: not applied): place $2, type $3, source key $4, side $5 (the event's side or
-- its opponent), actor $6 (case folded), places $7 (those inside a country or a box, read
-- first by read_places_within.sql), a valid-time range $8..$9 (both included; either end
-- open) that the event's valid interval overlaps, a recorded-time range $10..$11 (both
-- included); at most $12 rows (NULL: all). Every filter has an index (migrations 0009 and
-- 0010 state the expressions and predicates exactly as here): under the custom plan the
-- service's sessions force, a common filter walks the primary key and a rare one reads its
-- own index. The payload is read as jsonb with each \u0000 escape made \u0020 first (jsonb
-- refuses a NUL, which a quote or notes may hold; the fields read here never do). The
-- opponent and actor indexes are partial, over payloads holding the key's text (a payload
-- with the key always does): the strpos() beside those expressions changes no answer and
-- lets the planner use them.
SELECT position, id, place_id, place_version, type, recorded_at, commit_position, hash,
       prev_hash, payload_digest, payload
FROM events
WHERE position > $1
  AND ($2::text IS NULL OR place_id = $2)
  AND ($3::text IS NULL OR type = $3)
  AND ($4::text IS NULL OR source_key = $4)
  AND ($5::text IS NULL
       OR (replace(payload, '\u0000', '\u0020')::jsonb ->> 'side') = $5
       OR (strpos(payload, '"opponent"') > 0
           AND (replace(payload, '\u0000', '\u0020')::jsonb ->> 'opponent') = $5))
  AND ($6::text IS NULL
       OR (strpos(payload, '"actor"') > 0
           AND lower(replace(payload, '\u0000', '\u0020')::jsonb ->> 'actor') = lower($6::text)))
  AND ($7::text[] IS NULL OR place_id = ANY ($7::text[]))
  AND (($8::timestamptz IS NULL AND $9::timestamptz IS NULL)
       OR tstzrange(valid_from, valid_to) && tstzrange($8::timestamptz, $9::timestamptz, '[]'))
  AND ($10::timestamptz IS NULL OR recorded_at >= $10)
  AND ($11::timestamptz IS NULL OR recorded_at <= $11)
ORDER BY position
LIMIT $12
