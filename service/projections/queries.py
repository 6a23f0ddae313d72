"""The projections' named SQL (timelines, rebuilds, reads of the front), one query a file in
``sql/``, checked against the files at import (:mod:`service.sqlfiles`)."""

from __future__ import annotations

from typing import Final

from service.sqlfiles import SqlFolder


class ProjectionSQL(SqlFolder, package="service.projections"):
    """One attribute per ``sql/NAME.sql`` file."""

    adopt_policy: str
    clear_segments_next: str
    close_segments_next: str
    count_places_events: str
    hold_rebuild_workers_lock: str
    in_step: str
    index_segments_next: str
    lock_segments_for_swap: str
    plan_ranges_in_index_order: str
    project_commit: str
    read_current_segments: str
    read_event_sources: str
    read_extent: str
    read_free_connections: str
    read_log_for_rebuild: str
    read_log_range_for_rebuild: str
    read_place: str
    read_place_events: str
    read_place_events_after: str
    read_place_history_events: str
    read_place_history_rows: str
    read_places_as_known: str
    read_places_citing: str
    read_places_for_rebuild: str
    read_places_log_for_rebuild: str
    read_places_naming: str
    read_places_touched: str
    read_rebuild_lock_held: str
    read_rebuild_running: str
    read_state: str
    read_state_changes: str
    read_state_in_box: str
    read_timeline: str
    release_rebuild_workers_lock: str
    resolve_known_at: str
    set_local_lock_timeout: str
    swap_segments: str
    try_rebuild_lock: str
    try_rebuild_workers_lock: str


SQL: Final = ProjectionSQL.load()
