-- The places, with their versions, whose events up to position $2 use one of the side names
-- $1 as their side, opponent, source alignment or casualties' side: those an alias added or
-- removed must fold again. The names are slugs (letters, digits, '-', '_': nothing a regular
-- expression reads as an operator), and a stored payload is canonical JSON (RFC 8785: no
-- spaces; a quote inside a string is escaped), so '"side":"isis"' appears exactly in the
-- payloads whose side or casualties' side is isis. It reads the whole log once.
SELECT p.id, p.version
FROM places AS p
WHERE p.id IN (
  SELECT e.place_id
  FROM events AS e
  WHERE strpos(e.place_id, ':') = 0
    AND e.position <= $2
    AND e.payload ~ ('"(side|opponent|alignment)":"(' || array_to_string($1::text[], '|') || ')"')
)
