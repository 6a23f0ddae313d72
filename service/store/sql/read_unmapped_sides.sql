-- The side names the events up to position $1 state as their side or opponent that are none
-- of the names $2 (the side registry's ids and aliases as known at $1): the actors imports
-- turned into sides no registry entry knows. Per name: the events naming it (as side or
-- opponent: an event naming it twice counts once), the control claims among them that give
-- it a place (DESIGN 4, rule 2: capture, base_established and control as side; withdrawal
-- and base_evacuated as opponent), and the places they are about. Most used first, then by
-- name; a page starts after the cursor ($3 events, $4 name; null: the first page) and holds
-- $5 rows. The payload as jsonb is read as migration 0009's indexes read it. It reads the
-- log up to $1 once.
WITH named AS (
  SELECT
    e.place_id,
    e.type,
    (replace(e.payload, '\u0000', '\u0020')::jsonb ->> 'side') AS side,
    (replace(e.payload, '\u0000', '\u0020')::jsonb ->> 'opponent') AS opponent
  FROM events AS e
  WHERE e.position <= $1
    AND strpos(e.place_id, ':') = 0
),
uses AS (
  SELECT n.side AS name, n.place_id, n.type IN ('capture', 'base_established', 'control') AS claim
  FROM named AS n
  WHERE n.side IS NOT NULL
  UNION ALL
  SELECT n.opponent, n.place_id, n.type IN ('withdrawal', 'base_evacuated')
  FROM named AS n
  WHERE n.opponent IS NOT NULL AND n.opponent IS DISTINCT FROM n.side
)
SELECT
  u.name,
  count(*) AS events,
  count(*) FILTER (WHERE u.claim) AS claims,
  count(DISTINCT u.place_id) AS places
FROM uses AS u
WHERE u.name <> ALL($2::text[])
GROUP BY u.name
HAVING $3::bigint IS NULL OR count(*) < $3::bigint OR (count(*) = $3::bigint AND u.name > $4::text)
ORDER BY events DESC, u.name
LIMIT $5
