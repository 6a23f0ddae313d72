-- The events about the places $1 known at position $2 that carry casualty figures or link to
-- another event (the links group figures into incidents and withdraw them), in position
-- order, through events_place_position. Stored payloads are canonical JSON without white
-- space, so an event with figures holds the text '"casualties":{' (inside a string the
-- quotes would be escaped); the reader decodes each payload and keeps only what it needs.
SELECT e.position, e.payload
FROM events AS e
WHERE e.place_id = ANY($1::text[])
  AND e.position <= $2::bigint
  AND (
    e.type = 'casualties'
    OR strpos(e.payload, '"casualties":{') > 0
    OR EXISTS (SELECT 1 FROM event_links AS l WHERE l.id = e.id)
  )
ORDER BY e.position
