"""The place registry's merge rule: what a commit's events tell the registry about a place.

Pure. The first event naming a place registers it (DESIGN section 3): its name (the place's
id when it gives none), kind, point, parent and precision. Every later event only fills
what is still unknown, the point as a whole (a latitude never comes from one report and a
longitude from another), and adds the names it uses to the aliases; what the first report
said is never overwritten, whatever order reports disagree in. A commit folds its events
into one update per place with :func:`registry_updates`; the store then merges each update
into the stored row by the same rule (``frontline_append``, migration 0007:
``coalesce(stored, new)``, aliases united, the registered name left out of them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from contracts.events import Place


@dataclass(slots=True)
class PlaceUpdate:
    """What one commit tells the place registry about one place."""

    id: str
    name: str
    kind: str | None
    lat: float | None
    lon: float | None
    parent: str | None
    aliases: set[str]
    """Every name the commit's events use for the place, the registered one included."""
    precision: str | None
    version: int
    """The place's version after its last event in the commit."""
    first_position: int
    last_position: int

    @classmethod
    def first(cls, place: Place, version: int, position: int) -> PlaceUpdate:
        """The update of a place as the commit's first event about it states it."""
        return cls(
            id=place.id,
            name=place.name or place.id,
            kind=place.kind,
            lat=place.lat,
            lon=place.lon,
            parent=place.parent,
            aliases=names(place),
            precision=place.precision,
            version=version,
            first_position=position,
            last_position=position,
        )

    def absorb(self, place: Place, version: int, position: int) -> None:
        """A later event of the same commit about the same place: it fills what is still
        unknown, adds its names, and moves the version and last position on."""
        self.version = version
        self.last_position = position
        self.aliases.update(names(place))
        if self.lat is None and place.lat is not None:
            self.lat, self.lon = place.lat, place.lon
        self.kind = self.kind or place.kind
        self.parent = self.parent or place.parent
        self.precision = self.precision or place.precision


def names(place: Place) -> set[str]:
    """A place's aliases and the name it was given (the registry drops the registered one
    from the aliases it keeps)."""
    found = set(place.aliases)
    if place.name is not None:
        found.add(place.name)
    return found


def registry_updates(placed: Iterable[tuple[Place, int, int]]) -> list[PlaceUpdate]:
    """One update per place from a commit's events in position order, each given as (its
    place, the place's version after it, its position); places in the order they first
    appear."""
    updates: dict[str, PlaceUpdate] = {}
    for place, version, position in placed:
        update = updates.get(place.id)
        if update is None:
            updates[place.id] = PlaceUpdate.first(place, version, position)
        else:
            update.absorb(place, version, position)
    return list(updates.values())
