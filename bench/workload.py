"""Deterministic, realistic events: Zipf-ish over ~20,000 places, varied types and sources.

The same seed gives the same bytes, so two runs import exactly the same log. Events follow
wire contract v1 (DESIGN 3): statements and a few other reports link to the last event seen
at the same place (``confirms``/``denies`` by anyone, ``corrects`` only by the same source),
casualty reports carry figures, most times are days and some are weeks, months or instants.

Valid time moves with the stream, as a war is reported: the ``span`` events of an import
run from 2011-03-15 to 2024-12-31, each reported 0-2 days after it happened, except

* 5 % *backdated*: 2 days late plus an exponential delay of mean 30 days (a tail of reports
  months late);
* 2 % *retractions*: the source of the place's last event retracts it;
* 5 % *conflicting*: a ``control`` claim for another side on the same day as the place's
  last claim.

Each place has a holder and a rival (drawn per place): claims of control name the holder,
attacks (clashes, counter-attacks, encirclements) the rival against the holder, and a
capture by the rival (or a withdrawal or evacuation by the holder) swaps the two.
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
TYPE_WEIGHTS: Final = (22, 17, 12, 12, 3, 9, 6, 2, 4, 4, 5, 2, 1, 0.5)
KINDS: Final = (
    "village", "town", "hill", "road", "district", "city", "base", "school", "roundabout",
)  # fmt: skip
KIND_WEIGHTS: Final = (40, 25, 8, 6, 6, 5, 4, 3, 3)
PRECISIONS: Final = ("day",) * 14 + ("week", "week", "month", "exact", "exact", "hour")
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
    span: int = 1_000_000
    """Events over which valid time runs from the first day to the last (the import's size)."""
    begin: int = 0
    """Events on that clock before this stream's first (the import's size, for later POSTs)."""
    _rng: random.Random = field(init=False)
    _count: int = field(init=False, default=0)
    _by_name: dict[str, Outlet] = field(init=False)
    _claims: dict[str, tuple[date, str]] = field(init=False, default_factory=dict)
    _sides: dict[str, tuple[str, str]] = field(init=False, default_factory=dict)
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
        self._by_name = {outlet.name: outlet for outlet in self._outlets}
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

    def _day(self) -> date:
        """The valid day of the next report: the clock's day, a little or much earlier."""
        rng = self._rng
        today = min(DAYS - 1, (self.begin + self._count) * DAYS // max(self.span, 1))
        late = rng.choice((0, 0, 0, 1, 1, 2))
        if rng.random() < 0.05:  # backdated
            late = 2 + int(rng.expovariate(1 / 30))
        return FIRST_DAY + timedelta(days=max(0, today - late))

    def _occurred(self, day: date | None = None) -> tuple[dict[str, str], date]:
        rng = self._rng
        precision = rng.choice(PRECISIONS)
        if day is None:
            day = self._day()
        else:
            precision = "day"
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
        self._count += 1
        place = self._place()
        outlet = rng.choice(self._outlets)
        kind = rng.choices(TYPES, TYPE_WEIGHTS)[0]
        links = self._frozen_links if self._frozen_links is not None else self._last
        earlier = links.get(place.id)
        claimed = self._claims.get(place.id)
        retracts = earlier is not None and rng.random() < 0.02
        conflicts = not retracts and claimed is not None and rng.random() < 0.05
        holder, rival = self._sides.get(place.id) or tuple(rng.sample(SIDES, 2))
        side, opponent = holder, rival
        if kind in ("capture", "clash", "counter_attack", "encirclement", "advance", "strike"):
            side, opponent = rival, holder
        if kind in ("capture", "withdrawal", "base_evacuated"):
            holder, rival = rival, holder
        self._sides[place.id] = (holder, rival)
        if retracts:
            assert earlier is not None
            kind, outlet = "statement", self._by_name[earlier[1]]
        if conflicts:
            assert claimed is not None
            kind = "control"
            side = rival if claimed[1] == holder else holder
        occurred, day = self._occurred(claimed[0] if conflicts and claimed else None)
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
        if retracts:
            assert earlier is not None
            event["relates_to"] = [{"event": earlier[0], "relation": "retracts"}]
        elif earlier is not None and (kind == "statement" or rng.random() < 0.03):
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
        if event["type"] in ("capture", "control", "base_established") and "side" in event:
            self._claims[place.id] = (day, event["side"])
        return event

    def lines(self, count: int) -> Iterator[bytes]:
        """``count`` events, each encoded as one JSON document."""
        encode = msgspec.json.Encoder().encode
        for _ in range(count):
            yield encode(self.event())
