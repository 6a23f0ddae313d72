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


def read_payload(registry: SideRegistry, position: int, payload: bytes | str) -> EventReading:
    """The reading of an event of the log given as its stored payload (a place's event,
    never a registry's)."""
    stated = _stated.decode(payload)
    return reading(
        registry,
        position,
        side=stated.side,
        opponent=stated.opponent,
        source=stated.source.name,
        reliability=stated.source.reliability,
        alignment=stated.source.alignment,
    )


def with_reading(stored: StoredEvent, registry: SideRegistry, position: int) -> StoredEvent:
    """``stored`` with its reading as known at ``position`` (``read_as``); a registry event
    as it is (no side, no source to read)."""
    if stored.type in REGISTRY_TYPES:
        return stored
    return msgspec.structs.replace(
        stored, read_as=read_payload(registry, position, bytes(stored.event))
    )
