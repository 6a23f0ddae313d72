-- The span of the log up to a known position: its valid times and recording times.
SELECT count(*) AS events,
       min(valid_from) AS valid_from,
       max(valid_to) AS valid_to,
       min(recorded_at) AS first_recorded_at,
       max(recorded_at) AS last_recorded_at
FROM events
WHERE position <= $1
