"""The pure core of Frontline: no I/O, no asyncpg, no litestar."""
