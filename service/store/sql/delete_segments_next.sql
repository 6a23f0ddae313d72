-- Forget what the twin holds of some places: a rebuild folds them again from their log.
DELETE FROM segments_next WHERE place_id = ANY($1::text[])
