-- An empty log's projection takes policy $1 version $2 (the owner's function: it refuses,
-- answering false, once the log holds an event or the table a row).
SELECT frontline_adopt_policy($1, $2)
