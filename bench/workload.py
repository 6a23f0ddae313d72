"""Deterministic, realistic events: Zipf-ish over ~20,000 places, varied types and sources.

The same seed gives the same bytes, so two runs import exactly the same log. Events follow
wire contract v1 (DESIGN 3): statements and a few other reports link to the last event seen
at the same place (``confirms``/``denies`` by anyone, ``corrects`` only by the same source),
casualty reports carry figures, most times are days and some are weeks, months or instants.
"""

from __future__ import annotations

import bisect
import itertools
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

import msgspec

SIDES: Final = ("syrian-government", "isis", "sdf", "us-coalition", "hts", "turkey", "sna")
TYPES: Final = (
    "clash", "strike", "advance", "control", "capture", "casualties", "counter_attack",
    "withdrawal", "encirclement", "equipment_loss", "statement", "siege_lifted",
    "base_established", "base_evacuated",
)  # fmt: skip
TYPE_WEIGHTS: Final = (20, 15, 12, 10, 8, 8, 6, 5, 4, 4, 4, 2, 1, 1)
KINDS: Final = (
    "village", "town", "hill", "road", "district", "city", "base", "school", "roundabout",
)  # fmt: skip
KIND_WEIGHTS: Final = (40, 25, 8, 6, 6, 5, 4, 3, 3)
PRECISIONS: Final = ("day", "day", "day", "day", "day", "day", "week", "month", "exact", "hour")
HEDGES: Final = (
    "reported", "reported", "reported", "confirmed", "claimed", "alleged", "unconfirmed",
)  # fmt: skip
ATTRIBUTIONS: Final = ("local sources", "activists", "a military source", "residents", None, None)
GOVERNORATES: Final = (
    "aleppo", "raqqa", "deir-ez-zor", "hasakah", "idlib", "hama", "homs", "damascus",
    "rif-dimashq", "daraa", "quneitra", "latakia", "tartus", "suwayda",
)  # fmt: skip
SYLLABLES: Final = (
    "tal", "abu", "ain", "deir", "kafr", "jab", "bir", "qasr", "ra", "ma", "sa", "ha", "mas",
    "ka", "nah", "bab", "ar", "zur", "dan", "rim", "sh", "ku", "liy", "ham", "mar", "sul",
    "tan", "faq", "bal", "tib", "qar", "wad", "al", "jis", "shi", "ghur", "mi", "rab", "ya",
)  # fmt: skip
WORDS: Final = (
    "army", "troops", "the", "forces", "village", "town", "were", "reported", "to", "have",
    "advanced", "on", "positions", "near", "after", "heavy", "clashes", "with", "fighters",
    "according", "sources", "said", "militants", "captured", "area", "hill", "road",
    "checkpoint", "withdrew", "from", "shelling", "airstrikes", "targeted", "killed", "wounded",
    "several", "units", "on", "Saturday", "morning", "government", "coalition", "claimed",
    "that", "defenders", "repelled", "attack", "outskirts", "encircled", "besieged", "outpost",
    "lifted", "siege", "reinforcements", "arrived", "tanks", "destroyed", "vehicle",
)  # fmt: skip
FIRST_DAY: Final = date(2011, 3, 15)
DAYS: Final = (date(2024, 12, 31) - FIRST_DAY).days
ZIPF_EXPONENT: Final = 1.0


@dataclass(frozen=True, slots=True)
class Place:
    """A place of the synthetic map."""

    id: str
    name: str
    kind: str
    lat: float | None
    lon: float | None
    parent: str
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Outlet:
    """A synthetic source."""

    name: str
    reliability: str
    alignment: str
    url: str


def _places(rng: random.Random, count: int) -> list[Place]:
    places = []
    for index in range(count):
        parts = [rng.choice(SYLLABLES) + rng.choice(SYLLABLES) for _ in range(rng.choice((1, 2)))]
        name = " ".join(p.capitalize() for p in parts)
        slug = "-".join(parts)
        has_point = rng.random() < 0.9
        places.append(
            Place(
                id=f"sy-{slug}-{index:05d}",
                name=name,
                kind=rng.choices(KINDS, KIND_WEIGHTS)[0],
                lat=round(rng.uniform(32.3, 37.3), 4) if has_point else None,
                lon=round(rng.uniform(35.7, 42.4), 4) if has_point else None,
                parent=f"sy-{rng.choice(GOVERNORATES)}-governorate",
                aliases=(name.replace(" ", "-"),) if rng.random() < 0.1 else (),
            )
        )
    return places


def _outlets(rng: random.Random, count: int) -> list[Outlet]:
    outlets = []
    for index in range(count):
        alignment = rng.choice((*SIDES, "neutral", "neutral", "neutral"))
        name = f"{rng.choice(SYLLABLES).capitalize()}{rng.choice(SYLLABLES)} News {index}"
        outlets.append(
            Outlet(
                name=name,
                reliability=rng.choice("ABBCCCDDEF"),
                alignment=alignment,
                url=f"https://news{index}.example.org/reports/",
            )
        )
    return outlets


@dataclass
class Workload:
    """A seeded stream of events; ``events(n)`` continues where the last call stopped."""

    seed: int = 1
    """Draws the map (places, sources); the same for every stream."""
    stream: int = 0
    """Draws the events: streams of one seed are different events on the same map."""
    places: int = 20_000
    sources: int = 60
    _rng: random.Random = field(init=False)
    _places: list[Place] = field(init=False)
    _cumulative: list[float] = field(init=False)
    _outlets: list[Outlet] = field(init=False)
    _last: dict[str, tuple[str, str]] = field(init=False, default_factory=dict)
    _frozen_links: dict[str, tuple[str, str]] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        world = random.Random(self.seed)
        self._places = _places(world, self.places)
        weights = [1.0 / (rank**ZIPF_EXPONENT) for rank in range(1, self.places + 1)]
        self._cumulative = list(itertools.accumulate(weights))
        self._outlets = _outlets(world, self.sources)
        self._rng = random.Random(self.seed * 1_000_003 + self.stream)

    def freeze_links(self) -> None:
        """From now on, link only to events generated so far (those already committed).

        Concurrent POSTs must not link to an event another connection has not yet stored.
        """
        self._frozen_links = dict(self._last)

    def _place(self) -> Place:
        rng = self._rng
        rank = bisect.bisect_left(self._cumulative, rng.random() * self._cumulative[-1])
        return self._places[min(rank, self.places - 1)]

    def _occurred(self) -> tuple[dict[str, str], date]:
        rng = self._rng
        day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
        precision = rng.choice(PRECISIONS)
        if precision in ("exact", "hour"):
            moment = datetime(day.year, day.month, day.day, rng.randrange(24), rng.randrange(60))
            start = moment.isoformat() + "Z"
        else:
            start = day.isoformat()
        occurred = {"start": start, "precision": precision}
        if precision == "day" and rng.random() < 0.05:
            occurred["end"] = (day + timedelta(days=rng.randint(1, 5))).isoformat()
        return occurred, day

    def _quote(self) -> str:
        rng = self._rng
        words = rng.choices(WORDS, k=rng.randint(8, 45))
        return " ".join(words).capitalize() + "."

    def event(self) -> dict[str, Any]:
        """The next event as a JSON object."""
        rng = self._rng
        place = self._place()
        outlet = rng.choice(self._outlets)
        kind = rng.choices(TYPES, TYPE_WEIGHTS)[0]
        occurred, day = self._occurred()
        side, opponent = rng.sample(SIDES, 2)
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        place_json: dict[str, Any] = {"id": place.id, "name": place.name, "kind": place.kind}
        if place.lat is not None:
            place_json["lat"], place_json["lon"] = place.lat, place.lon
        place_json["parent"] = place.parent
        if place.aliases:
            place_json["aliases"] = list(place.aliases)
        if rng.random() < 0.15:
            place_json["precision"] = rng.choice(("exact", "near", "district"))
        source: dict[str, Any] = {
            "name": outlet.name,
            "reliability": outlet.reliability,
            "alignment": outlet.alignment,
            "published_at": (day + timedelta(days=rng.randint(0, 4))).isoformat(),
            "url": f"{outlet.url}{rng.getrandbits(40):x}",
        }
        attribution = rng.choice(ATTRIBUTIONS)
        if attribution is not None:
            source["attribution"] = attribution
        event: dict[str, Any] = {
            "id": event_id,
            "type": kind,
            "place": place_json,
            "occurred": occurred,
            "source": source,
            "credibility": rng.randint(1, 6),
            "hedge": rng.choice(HEDGES),
            "quote": self._quote(),
        }
        if kind != "statement" or rng.random() < 0.5:
            event["side"] = side
        if kind in ("capture", "withdrawal", "clash", "counter_attack") and rng.random() < 0.7:
            event["opponent"] = opponent
        if rng.random() < 0.6:
            event["actor"] = rng.choice(("Tiger Forces", "Liwa al-Quds", "4th Division", "YPG"))
        if kind == "casualties" or (kind in ("clash", "strike") and rng.random() < 0.1):
            killed = rng.randint(0, 60)
            figures: dict[str, Any] = {"killed": killed, "side": rng.choice(SIDES)}
            if rng.random() < 0.4:
                figures["wounded"] = rng.randint(0, 100)
            if rng.random() < 0.2:
                figures["low"], figures["high"] = max(0, killed - 5), killed + rng.randint(0, 20)
            event["casualties"] = figures
        links = self._frozen_links if self._frozen_links is not None else self._last
        earlier = links.get(place.id)
        if earlier is not None and (kind == "statement" or rng.random() < 0.03):
            target, target_source = earlier
            relation = rng.choice(("confirms", "denies"))
            if target_source == outlet.name and rng.random() < 0.5:
                relation = "corrects"
            event["relates_to"] = [{"event": target, "relation": relation}]
        elif kind == "statement":
            event["type"] = "strike"  # a statement needs an earlier event to speak of
        if rng.random() < 0.05:
            event["notes"] = "Geolocated from footage; " + self._quote()
        self._last[place.id] = (event_id, outlet.name)
        return event

    def lines(self, count: int) -> Iterator[bytes]:
        """``count`` events, each encoded as one JSON document."""
        encode = msgspec.json.Encoder().encode
        for _ in range(count):
            yield encode(self.event())
