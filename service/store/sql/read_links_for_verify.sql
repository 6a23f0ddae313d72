-- The rows of event_links whose position is in [$1, $2], in position order (verify compares
-- them with the links each payload states; within a position the verifier sorts them).
SELECT position, id, target, relation
FROM event_links
WHERE position BETWEEN $1 AND $2
ORDER BY position
