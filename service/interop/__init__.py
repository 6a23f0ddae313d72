"""Importers and exporters for the formats conflict researchers use: ACLED, UCDP GED, PLOVER.

Adapters beside the domain, not part of it: each format module turns a file's bytes into
:class:`~service.interop.rows.SourceRow` values (pure, no I/O) holding Frontline events;
the store matches their places and appends their events, and the conflict model never
learns which format an event came from.
"""
