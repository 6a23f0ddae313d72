"""Importers and exporters for the formats conflict researchers use: ACLED, UCDP GED, PLOVER.

Each format module turns a file's bytes into :class:`~service.domain.interop.rows.SourceRow`
values (pure, no I/O); the store matches their places and appends their events.
"""
