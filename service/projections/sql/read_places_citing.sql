-- The places, with their versions, whose events up to position $2 cite one of the sources
-- $1 (their keys: events_source_position finds them): those a source edit re-grades or
-- aliases must fold again. Registry streams ('source:...') are no places.
SELECT p.id, p.version
FROM places AS p
WHERE p.id IN (
  SELECT e.place_id
  FROM events AS e
  WHERE e.source_key = ANY($1::text[])
    AND e.position <= $2
    AND strpos(e.place_id, ':') = 0
)
