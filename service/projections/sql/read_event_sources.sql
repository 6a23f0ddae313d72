-- The source name of some events. jsonb refuses a whole payload holding the escape \u0000 (a
-- NUL, which a quote or notes may hold): such a payload is read with each NUL escape (one not
-- itself escaped) as U+FFFD; a source's name cannot hold a NUL.
SELECT id,
       (CASE WHEN strpos(payload, '\u0000') > 0
             THEN regexp_replace(payload, '(?<!\\)((?:\\\\)*)\\u0000', '\1\\ufffd', 'g')
             ELSE payload END)::jsonb -> 'source' ->> 'name' AS source
FROM events
WHERE id = ANY($1::uuid[])
