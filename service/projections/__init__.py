"""Projections: tables derived from the log alone, kept in step with it, rebuildable. Their SQL
lives beside them in ``sql/*.sql``, one query a file, declared in ``queries.py``."""
