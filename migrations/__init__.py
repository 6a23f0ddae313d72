"""Alembic migrations: raw SQL, real downgrades. Run through ``frontline migrate``."""
