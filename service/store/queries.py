"""The store's named SQL (the log's persistence: events, group commit, keys, audit), one
query a file in ``sql/``, checked against the files at import (:mod:`service.sqlfiles`)."""

from __future__ import annotations

from typing import Final

from service.sqlfiles import SqlFolder


class StoreSQL(SqlFolder, package="service.store"):
    """One attribute per ``sql/NAME.sql`` file."""

    append_commit: str
    find_known: str
    insert_key: str
    lock_head: str
    read_casualty_places_in_range: str
    read_casualty_reports: str
    read_event_by_id: str
    read_events_page: str
    read_hash_at: str
    read_head: str
    read_head_detail: str
    read_key_by_hash: str
    read_keys: str
    read_links_for_verify: str
    read_links_to: str
    read_live_page: str
    read_log_for_verify: str
    read_place_event_counts: str
    read_places_for_matching: str
    read_places_within: str
    read_projection_check_all: str
    read_projection_check_places: str
    read_projection_state: str
    read_registry: str
    read_schema_revision: str
    read_segments_without_events: str
    read_unmapped_sides: str
    read_streams_log: str
    revoke_key: str
    set_local_settings: str


SQL: Final = StoreSQL.load()
