-- A rebuild starts from nothing; readers keep seeing the old rows until it commits.
DELETE FROM segments
