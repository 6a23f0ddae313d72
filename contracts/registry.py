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


class SidesPage(_Output, frozen=True):
    """The side registry as known at ``known_position``, in side id order."""

    known_position: int
    sides: list[SideEntry]
