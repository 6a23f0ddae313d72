-- Write one commit (the owner's function, migration 0007): it numbers the events after the
-- head, checks the hash chain from the head's hash, writes the events, the links their
-- payloads state and the place registry, and moves the head to the last event.
-- $1..$13: the events' columns as arrays (recorded_at, $8, one value for the commit);
-- $14..$24: the place registry's updates as arrays (see _place_columns).
-- NOTIFY frontline_log, delivered at the commit, wakes the live streams of every process
-- (service/store/listen.py).
SELECT pg_notify('frontline_log', ''), frontline_append(
  $1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[],
  $7::timestamptz[], $8::timestamptz, $9::text[], $10::text[], $11::bytea[], $12::text[],
  $13::bytea[], $14::text[], $15::text[], $16::text[], $17::float8[], $18::float8[],
  $19::text[], $20::text[], $21::text[], $22::bigint[], $23::bigint[], $24::bigint[]
)
