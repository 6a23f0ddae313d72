"""Shapes of the registries' answers (DESIGN section 8): the side registry as known at a
position of the log."""

from __future__ import annotations

from msgspec import Struct


class _Output(Struct, frozen=True, kw_only=True):
    """Base of every answer struct."""


class SideEntry(_Output, frozen=True):
    """One registered side as the registry stood at the answer's position."""

    side: str
    """The canonical id: claims under any alias count for it."""
    name: str
    kind: str
    colour: str | None
    aliases: tuple[str, ...]
    version: int
    """The version of the side's registry stream (its number of ``side_registered`` events)."""
    position: int
    """The position of the ``side_registered`` event that stated this entry."""
    submitter: str | None
    """Who stated it (the API key's name; null: the command line)."""


class SourceEntry(_Output, frozen=True):
    """One registered source as the registry stood at the answer's position."""

    source: str
    """The source's name as registered (the name listings show)."""
    key: str
    """Its identity: the name without case or white space (DESIGN 4, rule 5)."""
    reliability: str
    alignment: str
    aliases: tuple[str, ...]
    url: str | None
    version: int
    position: int
    """The position of the ``source_registered`` event that stated this entry."""
    submitter: str | None


class SourcesPage(_Output, frozen=True):
    """The source registry as known at ``known_position``, in key order."""

    known_position: int
    sources: list[SourceEntry]


class SidesPage(_Output, frozen=True):
    """The side registry as known at ``known_position``, in side id order."""

    known_position: int
    sides: list[SideEntry]


class UnmappedSide(_Output, frozen=True):
    """A side name the log's events use (as side or opponent) that no registry entry knows
    as known at the answer's position: an actor label an import (or a client) turned into a
    side of its own. An editor aliases it in one step: ``POST /v1/sides`` with the side's
    entry and the name among its aliases."""

    side: str
    """The name as the events state it (an importer's slug of the dataset's label)."""
    events: int
    """The events naming it as their side or opponent."""
    claims: int
    """Those of them that are control claims giving it a place (DESIGN 4, rule 2)."""
    places: int
    """The places those events are about."""


class UnmappedSidesPage(_Output, frozen=True):
    """The side names no registry entry knows, as known at ``known_position``: most used
    (``events``) first, then by name; ``next_cursor`` and ``next`` name the next page."""

    known_position: int
    items: list[UnmappedSide]
    next_cursor: str | None
    next: str | None


class PlaceMergeEntry(_Output, frozen=True):
    """A merge in force: ``merged`` is the same place as ``place`` (its events belong to
    ``place``'s timeline) as the registry stood at the answer's position."""

    place: str
    """The surviving place."""
    merged: str
    """The place merged into it."""
    id: str
    """The id of the ``place_merged`` event (what an unmerge retracts)."""
    version: int
    """The version of the merged place's registry stream ``place:<merged>``."""
    position: int
    """The position of the ``place_merged`` event."""
    submitter: str | None
    """Who merged (the API key's name; null: the command line)."""


class PlaceMergesPage(_Output, frozen=True):
    """The merges in force as known at ``known_position``, in merged-place order."""

    known_position: int
    merges: list[PlaceMergeEntry]
