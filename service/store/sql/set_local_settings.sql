-- Through a transaction pooler (FRONTLINE_DB_POOLER=transaction), the first statement of each
-- write transaction: the role it acts as ($1, the service role: no UPDATE, DELETE or TRUNCATE
-- on events, DESIGN 6) and synchronous_commit ($2, 'on': a 2xx means flushed), both for this
-- transaction only (SET LOCAL), so nothing stays on the server connection the pooler hands on.
SELECT set_config('role', $1, true), set_config('synchronous_commit', $2, true)
