-- Project one commit in its transaction, in one round trip (the owner's function, migration
-- 0007): move the projection from $2 to the commit $1 under policy $3 version $4 if it was in
-- step, close the current rows ($5, $6: place and valid_from) and insert the new ones ($7..
-- $16, columns of segments without the known range, which is [$1, open)). False: the rows
-- were stale, and nothing was written.
SELECT frontline_project_commit(
  $1::bigint, $2::bigint, $3::text, $4::integer, $5::text[], $6::timestamptz[], $7::text[],
  $8::timestamptz[], $9::timestamptz[], $10::text[], $11::text[], $12::text[], $13::boolean[],
  $14::smallint[], $15::text[], $16::text[]
)
