"""The store: PostgreSQL through asyncpg. SQL lives in ``sql/*.sql``, one query a file, declared
in ``queries.py``."""
