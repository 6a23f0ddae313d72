-- Each place with its number of events up to position $1 (verify samples places by them);
-- registry streams ('side:...') are no places.
SELECT place_id, count(*) AS events
FROM events
WHERE position <= $1 AND strpos(place_id, ':') = 0
GROUP BY place_id
ORDER BY place_id
