"""Which Frontline place a source's place is: the matching rule of docs/interop.md.

1. Names are compared normalised: accents dropped, case folded, every run of other characters
   than letters and digits one space ("Akçakale" = "akcakale", "Al-Mansurah" = "al mansurah").
   A place's registered name and each of its aliases count.
2. A source place with a point is the known place of the same name whose point is nearest, if
   that is within :data:`MATCH_DISTANCE_KM`. Same-named places farther away are other places:
   a new place is registered, never merged with them. A known place of that name without a
   point is taken only when it is the only one of that name (and the row is flagged).
3. A source place without a point is the known place of that name (the one with the smallest id
   if several, and the row is flagged); none: a new place.
4. A new place's id is the slug of its name (``al-mansurah``); when that id is taken, the slug
   followed by its point (``al-mansurah-35-02n-36-60e``), so the same file gives the same ids
   whatever was imported before it. Each place registered during an import is known to the
   rows after it.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from service.interop.rows import PlaceRef, slug

#: Two same-named places at most this far apart (great-circle kilometres) are one place.
MATCH_DISTANCE_KM: Final = 25.0
EARTH_RADIUS_KM: Final = 6371.0088

_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True, slots=True)
class KnownPlace:
    """A place of the registry, as matching needs it."""

    id: str
    name: str
    aliases: tuple[str, ...] = ()
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """The Frontline place of a source place."""

    place_id: str
    new: bool
    """True when the import registers the place (its first event names it)."""
    flag: str | None = None
    """Why the match deserves a look (matched by name alone), or None."""


@functools.lru_cache(maxsize=1 << 16)
def normalise(name: str) -> str:
    """A name as matching compares it: no accents, case folded, words split by one space.
    (Cached: a file names the same places again and again.)"""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", bare.casefold()).split())


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def point_suffix(lat: float, lon: float) -> str:
    """A point as an id suffix: ``35-02n-36-60e``."""
    return slug(
        f"{abs(lat):.2f}{'n' if lat >= 0 else 's'}-{abs(lon):.2f}{'e' if lon >= 0 else 'w'}"
    )


class PlaceIndex:
    """The registry's places by normalised name and alias, plus those an import registers."""

    def __init__(self, known: Iterable[KnownPlace], within_km: float = MATCH_DISTANCE_KM) -> None:
        self.within_km = within_km
        self._by_name: dict[str, list[KnownPlace]] = {}
        self._ids: set[str] = set()
        for place in known:
            self._add(place)

    def _add(self, place: KnownPlace) -> None:
        self._ids.add(place.id)
        for name in {normalise(n) for n in (place.name, *place.aliases)}:
            self._by_name.setdefault(name, []).append(place)

    def __contains__(self, place_id: object) -> bool:
        return place_id in self._ids

    def resolve(self, ref: PlaceRef) -> Match:
        """The known place ``ref`` is, or a new one (registered in the index at once)."""
        candidates = self._by_name.get(normalise(ref.name), [])
        if len(candidates) > 1:
            candidates = sorted(candidates, key=lambda p: p.id)
        if ref.lat is not None and ref.lon is not None:
            lat, lon = ref.lat, ref.lon
            near = [
                (distance_km(lat, lon, p.lat, p.lon), p.id)
                for p in candidates
                if p.lat is not None and p.lon is not None
            ]
            within = [d for d in near if d[0] <= self.within_km]
            if within:
                return Match(min(within)[1], new=False)
            pointless = [p for p in candidates if p.lat is None]
            if len(candidates) == 1 and pointless:
                return Match(
                    pointless[0].id,
                    new=False,
                    flag=f"place {ref.name!r} matched {pointless[0].id} by name alone "
                    "(the registered place has no point)",
                )
        elif candidates:
            flag = None
            if len(candidates) > 1:
                flag = (
                    f"place {ref.name!r} has no point and {len(candidates)} places bear the "
                    f"name; took {candidates[0].id}"
                )
            return Match(candidates[0].id, new=False, flag=flag)
        return Match(self._register(ref), new=True)

    def _register(self, ref: PlaceRef) -> str:
        base = slug(ref.name, 100)  # room for a suffix within 128
        place_id = base
        if place_id in self._ids and ref.lat is not None and ref.lon is not None:
            place_id = f"{base}-{point_suffix(ref.lat, ref.lon)}"
        n = 2
        while place_id in self._ids:
            place_id = f"{base}-{n}"
            n += 1
        self._add(KnownPlace(id=place_id, name=ref.name, lat=ref.lat, lon=ref.lon))
        return place_id
