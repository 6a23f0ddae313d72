"""Projections: tables derived from the log alone, kept in step with it, rebuildable."""
