-- Every place with its number of events, in place id order: how a rebuild cuts the log
-- into ranges of places of about the same work.
SELECT id, version
FROM places
ORDER BY id
