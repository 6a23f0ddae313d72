"""Generated UCDP GED and PLOVER files for the import benchmark (bench/interop.py).

``ucdp_file(n, rng)`` and ``plover_file(n, rng)`` return files of ``n`` records shaped like the
real ones: a pool of places (about one per 25 records, at least 20) with fixed points inside
Syria, some with non-ASCII names; Zipf-ish reuse of places; every date_prec and where_prec
code in realistic shares; quoted source texts holding commas and newlines; empty cells. About
1 % of UCDP rows break low <= best <= high (flagged) and 0.5 % of records cannot be mapped
(an error row), as real exports have a few. The same ``rng`` state gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

UCDP_COLUMNS: Final = (
    "id", "relid", "year", "active_year", "code_status", "type_of_violence",
    "conflict_dset_id", "conflict_new_id", "conflict_name", "dyad_dset_id", "dyad_new_id",
    "dyad_name", "side_a_dset_id", "side_a_new_id", "side_a", "side_b_dset_id",
    "side_b_new_id", "side_b", "number_of_sources", "source_article", "source_office",
    "source_date", "source_headline", "source_original", "where_prec", "where_coordinates",
    "where_description", "adm_1", "adm_2", "latitude", "longitude", "geom_wkt", "priogrid_gid",
    "country", "country_id", "region", "event_clarity", "date_prec", "date_start", "date_end",
    "deaths_a", "deaths_b", "deaths_civilians", "deaths_unknown", "best", "high", "low",
    "gwnoa", "gwnob",
)  # fmt: skip
DYADS: Final = (
    ("Government of Syria", "IS", "652", "234"),
    ("Government of Syria", "Syrian insurgents", "652", "1157"),
    ("SDF", "IS", "5801", "234"),
    ("Government of Syria", "HTS", "652", "6363"),
    ("Government of Turkey", "SDF", "640", "5801"),
)
OUTLETS: Final = ("Reuters", "AFP", "SANA", "SOHR", "ANHA", "Enab Baladi", "Deir Ezzor 24", "AP")
SYLLABLES: Final = (
    "tal", "abu", "ain", "deir", "kafr", "jab", "bir", "qasr", "ma", "mas", "ka", "nah", "bab",
    "zur", "rim", "ham", "sul", "tan", "bal", "qar", "wad", "jis", "shi", "ghur", "rab",
)  # fmt: skip
ACCENTED: Final = ("Ḥalab", "Dayr az Zawr", "Maskanah / مسكنة", "Tall Abyaḍ", "Jarābulus", "Manbij")
KIND_WORDS: Final = ("town", "village", "village", "city", "district", "")
GOVERNORATES: Final = ("Aleppo", "Ar Raqqah", "Dayr az Zawr", "Al Hasakah", "Idlib", "Hamah")
ASSAULT_MODES: Final = ("firearms", "firearms", "aerial", "explosives", "heavy-weapons", "")
OTHER_EVENTS: Final = (
    ("PROTEST", "demo"), ("MOBILIZE", "troops"), ("COERCE", "arrest"), ("THREATEN", "violence"),
    ("ACCUSE", ""), ("RETREAT", ""), ("AID", ""),
)  # fmt: skip
FIRST_DAY: Final = date(2012, 1, 1)


@dataclass(frozen=True, slots=True)
class _Place:
    name: str
    kind: str
    lat: float
    lon: float
    adm_1: str


def _places(n: int, rng: random.Random) -> list[_Place]:
    count = max(20, n // 25)
    places: list[_Place] = []
    seen: set[str] = set()
    while len(places) < count:
        if len(places) < len(ACCENTED):
            name = ACCENTED[len(places)]
        else:
            name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).title()
            if rng.random() < 0.3:
                name = f"{rng.choice(('Tall', 'Ayn', 'Dayr', 'Kafr'))} {name}"
        if name in seen:
            continue
        seen.add(name)
        places.append(
            _Place(
                name=name,
                kind=rng.choice(KIND_WORDS),
                lat=round(rng.uniform(32.4, 37.2), 5),
                lon=round(rng.uniform(35.8, 42.3), 5),
                adm_1=rng.choice(GOVERNORATES),
            )
        )
    return places


def _pick(places: list[_Place], rng: random.Random) -> _Place:
    # Zipf-ish: a few places are reported often, most rarely.
    return places[min(len(places) - 1, int(rng.paretovariate(1.2)) - 1)]


def _article(rng: random.Random, day: date, place: _Place) -> tuple[str, list[str]]:
    outlets = rng.sample(OUTLETS, rng.choice((1, 1, 1, 2, 2, 3)))
    parts = [
        f'{o},{day.isoformat()},"Fighting near {place.name}, {rng.randint(1, 40)} dead, '
        f'sources say"'
        for o in outlets
    ]
    return ";\n".join(parts), outlets


def ucdp_file(n: int, rng: random.Random) -> bytes:
    """A UCDP GED CSV file of ``n`` rows."""
    places = _places(n, rng)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(UCDP_COLUMNS)
    for i in range(n):
        place = _pick(places, rng)
        side_a, side_b, gw_a, gw_b = rng.choice(DYADS)
        start = FIRST_DAY + timedelta(days=rng.randrange(4000))
        date_prec = rng.choices("12345", weights=(80, 8, 5, 5, 2))[0]
        span = {"1": 0, "2": rng.randint(1, 5), "3": 6, "4": rng.randint(8, 29), "5": 200}
        end = start + timedelta(days=span[date_prec])
        where_prec = rng.choices("1234567", weights=(55, 20, 10, 8, 4, 2, 1))[0]
        deaths = [rng.choice((0, 0, 1, 2, 3, 5, 8)) for _ in range(4)]
        best = sum(deaths)
        low, high = max(0, best - rng.randint(0, 2)), best + rng.randint(0, 5)
        if rng.random() < 0.01:
            low = best + 1 + rng.randint(0, 3)  # breaks low <= best: flagged
        article, outlets = _article(rng, end, place)
        lat = f"{place.lat}"
        if rng.random() < 0.005:
            lat = ""  # cannot be mapped: an error row naming latitude
        where = f"{place.name} {place.kind}".strip()
        row = {
            "id": str(400000 + i),
            "relid": f"SYR-{start.year}-1-299-{i}",
            "year": str(start.year),
            "active_year": "1",
            "code_status": "Clear",
            "type_of_violence": "1",
            "conflict_dset_id": "299",
            "conflict_new_id": "299",
            "conflict_name": "Syria: Government",
            "dyad_name": f"{side_a} - {side_b}",
            "side_a_dset_id": gw_a,
            "side_a_new_id": gw_a,
            "side_a": side_a,
            "side_b_dset_id": gw_b,
            "side_b_new_id": gw_b,
            "side_b": side_b,
            "number_of_sources": str(len(outlets)) if rng.random() < 0.9 else "-1",
            "source_article": article,
            "source_office": ";".join(outlets),
            "source_date": ";".join(end.isoformat() for _ in outlets),
            "source_headline": f"Fighting near {place.name}",
            "where_prec": where_prec,
            "where_coordinates": where,
            "where_description": f"{place.name}, {place.adm_1} governorate",
            "adm_1": f"{place.adm_1} governorate",
            "adm_2": "",
            "latitude": lat,
            "longitude": f"{place.lon}",
            "geom_wkt": f"POINT ({place.lon} {place.lat})",
            "country": "Syria",
            "country_id": "652",
            "region": "Middle East",
            "event_clarity": rng.choice("1112"),
            "date_prec": date_prec,
            "date_start": f"{start.isoformat()} 00:00:00.000",
            "date_end": f"{end.isoformat()} 00:00:00.000",
            "deaths_a": str(deaths[0]),
            "deaths_b": str(deaths[1]),
            "deaths_civilians": str(deaths[2]),
            "deaths_unknown": str(deaths[3]),
            "best": str(best),
            "high": str(high),
            "low": str(low),
            "gwnoa": gw_a,
            "gwnob": "",
        }
        writer.writerow([row.get(c, "") for c in UCDP_COLUMNS])
    return out.getvalue().encode()


def plover_file(n: int, rng: random.Random, *, lines: bool = True) -> bytes:
    """A PLOVER file of ``n`` records: JSON lines (the specification's advice), or one JSON
    array when ``lines`` is false."""
    places = _places(n, rng)
    records: list[str] = []
    for i in range(n):
        place = _pick(places, rng)
        side_a, side_b, _, _ = rng.choice(DYADS)
        day = FIRST_DAY + timedelta(days=rng.randrange(4000))
        draw = rng.random()
        if draw < 0.5:
            event, mode = "ASSAULT", rng.choice(ASSAULT_MODES)
        elif draw < 0.6:
            event, mode = "COERCE", "seize"
        else:
            event, mode = rng.choice(OTHER_EVENTS)
        article, outlets = _article(rng, day, place)
        record: dict[str, object] = {
            "id": f"PLV-{day:%Y%m%d}-{i:07d}",
            "date": day.isoformat(),
            "event": event,
            "mode": mode,
            "context": rng.choice((["military"], ["military", "resource"], "political")),
            "actor": [{"code": "SYR", "actor_text": side_a, "identifier_text": side_a}],
            "recipient": [{"actor_text": side_b}],
            "location": {
                "name": place.name,
                "lat": place.lat,
                "lon": place.lon,
                "admin1": place.adm_1,
                "country": "SYR",
            },
            "event_text": article,
            "cite_info": {"publication": outlets[0], "url": f"https://example.org/{i}"},
        }
        if event == "ASSAULT" and rng.random() < 0.4:
            record["dead"] = rng.choice((0, 1, 2, 4, 9, "dozens"))
            record["injured"] = rng.randint(0, 20)
        if rng.random() < 0.005:
            del record["date"]  # cannot be mapped: an error row naming date
        records.append(json.dumps(record, ensure_ascii=False))
    if lines:
        return ("\n".join(records) + "\n").encode()
    return ("[\n" + ",\n".join(records) + "\n]\n").encode()
