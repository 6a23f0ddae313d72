"""An event read through the registries as known at a position, beside what it stated.
Pure.

The log keeps every event as its source sent it (append-only); the answers that show an
event (the log export, the event reads, a place's history) add how the registries as known
at the answer's position read it: the canonical side and display name of its ``side`` and
``opponent``, and its source's registered name, grade and alignment (what the fold scores it
with, :meth:`~service.domain.registry.SideRegistry.canonical_fact`).
"""

from __future__ import annotations

from typing import Final

import msgspec

from contracts.events import REGISTRY_TYPES
from contracts.responses import EventReading, StoredEvent
from service.domain.registry import SideRegistry


class _Source(msgspec.Struct, frozen=True):
    name: str
    reliability: str = "F"
    alignment: str = "neutral"


class _Stated(msgspec.Struct, frozen=True):
    """The fields of a payload a reading needs (the rest is skipped unread)."""

    source: _Source
    side: str | None = None
    opponent: str | None = None


_stated: Final = msgspec.json.Decoder(_Stated)


def side_as_known(registry: SideRegistry, name: str | None) -> tuple[str | None, str | None]:
    """The canonical side ``name`` stands for and its display name (None when no entry
    registers it); (None, None) for no name."""
    if name is None:
        return None, None
    side = registry.canonical(name)
    entry = registry.entries.get(side)
    return side, None if entry is None else entry.name


def reading(
    registry: SideRegistry,
    position: int,
    *,
    side: str | None,
    opponent: str | None,
    source: str,
    reliability: str,
    alignment: str,
) -> EventReading:
    """How ``registry`` (as known at ``position``) reads an event stating these fields."""
    canonical_side, side_name = side_as_known(registry, side)
    canonical_opponent, opponent_name = side_as_known(registry, opponent)
    entry = registry.source_of(source)
    if entry is not None:
        source, reliability, alignment = entry.source, entry.reliability, entry.alignment
    return EventReading(
        known_position=position,
        side=canonical_side,
        side_name=side_name,
        opponent=canonical_opponent,
        opponent_name=opponent_name,
        source=source,
        reliability=reliability,
        alignment=registry.canonical(alignment),
        registered_source=entry is not None,
    )


class EventReader:
    """The readings of many events through one registry as known at one position (a log
    export, a page): each distinct stated (side, opponent, source, grade, alignment) is read
    once, so a long export pays a payload decode and a dictionary look-up per event."""

    __slots__ = ("_seen", "position", "registry")

    def __init__(self, registry: SideRegistry, position: int) -> None:
        self.registry = registry
        self.position = position
        self._seen: dict[tuple[str | None, str | None, str, str, str], EventReading] = {}

    def read(self, payload: bytes | str) -> EventReading:
        """The reading of a place's event given as its stored payload."""
        stated = _stated.decode(payload)
        source = stated.source
        key = (stated.side, stated.opponent, source.name, source.reliability, source.alignment)
        found = self._seen.get(key)
        if found is None:
            if len(self._seen) >= _MAX_SEEN:
                self._seen.clear()
            found = self._seen[key] = reading(
                self.registry,
                self.position,
                side=stated.side,
                opponent=stated.opponent,
                source=source.name,
                reliability=source.reliability,
                alignment=source.alignment,
            )
        return found

    def stored(self, stored: StoredEvent) -> StoredEvent:
        """``stored`` with its reading (``read_as``); a registry event as it is (no side,
        no source to read)."""
        if stored.type in REGISTRY_TYPES:
            return stored
        return msgspec.structs.replace(stored, read_as=self.read(bytes(stored.event)))


_MAX_SEEN: Final = 100_000
"""Distinct readings an :class:`EventReader` keeps (then it starts again): memory bounded
whatever the log holds."""
