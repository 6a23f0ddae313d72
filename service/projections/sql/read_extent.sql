-- The span of the log up to a known position: its valid times and recording times (the
-- valid times of events about places: a registry event has none).
SELECT count(*) AS events,
       min(valid_from) FILTER (WHERE strpos(place_id, ':') = 0) AS valid_from,
       max(valid_to) FILTER (WHERE strpos(place_id, ':') = 0) AS valid_to,
       min(recorded_at) AS first_recorded_at,
       max(recorded_at) AS last_recorded_at
FROM events
WHERE position <= $1
