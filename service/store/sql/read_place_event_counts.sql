-- Each place with its number of events up to position $1 (verify samples places by them).
SELECT place_id, count(*) AS events
FROM events
WHERE position <= $1
GROUP BY place_id
ORDER BY place_id
