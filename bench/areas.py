"""What ``GET /v1/state/areas`` costs for a view of about 1,000 places.

A fresh database gets a synthetic front through the real app (``POST /v1/events``, NDJSON):
``--places`` places scattered over Syria's box, each held by the side whose centre is
nearest (one in ten by another side, at random), of mixed kinds (city, town, village, hill,
base); some contested by a clash, some disputed by a second source claiming another side.
Then ``GET /v1/state/areas`` is asked ``--requests`` times through the app in this process
(ASGI, no socket: the figure is the route's, reading the database and computing the
geometry), for the whole front and for a box holding about ``--view`` places, and the
geometry alone (``service.domain.areas.areas``) on the same places.

    python -m bench.areas                               # 5,000 places, views of ~1,000
    python -m bench.areas --places 1000 --requests 100

Results go to ``bench/out/areas-<time>.json``; a markdown table is printed (docs/map.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from litestar.testing import AsyncTestClient

from bench.run import OUT, machine_info, source_revision
from bench.servers import EmbeddedPostgres, grant_key, recreate_database
from service.api.areas import boundaries
from service.app import create_app
from service.domain.areas import Located, areas
from service.roles import new_key
from service.settings import Settings
from service.store import migrate

DATABASE: Final = "frontline_bench_areas"
#: Syria's box (west, south, east, north).
BOX: Final = (35.7, 32.3, 42.4, 37.3)
SIDES: Final = {
    "syrian-government": (36.8, 34.0),
    "isis": (39.5, 34.9),
    "sdf": (40.6, 36.5),
    "hts": (36.6, 35.9),
    "us-coalition": (38.8, 33.5),
    "turkey": (37.6, 36.6),
}
KINDS: Final = ("city",) + ("town",) * 3 + ("village",) * 5 + ("hill", "base")
SOURCES: Final = ("Reuters", "South Front", "SANA", "Amaq", "SOHR", "ANHA")


def parser() -> argparse.ArgumentParser:
    """The command line."""
    args = argparse.ArgumentParser(
        prog="python -m bench.areas", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    args.add_argument("--places", type=int, default=5000, help="places in the front")
    args.add_argument("--view", type=int, default=1000, help="places the box should hold")
    args.add_argument("--requests", type=int, default=200, help="requests per question")
    args.add_argument("--seed", type=int, default=17, help="the workload's seed")
    args.add_argument("--out", type=Path, default=OUT, help="where results go")
    return args


def _event(place: dict[str, Any], kind: str, side: str, source: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": kind,
        "place": place,
        "side": side,
        "occurred": {"start": "2017-06-01", "precision": "day"},
        "source": {"name": source, "reliability": "C", "alignment": "neutral"},
        "credibility": 3,
        "hedge": "reported",
    }


def workload(count: int, seed: int) -> tuple[list[dict[str, Any]], list[tuple[float, float]]]:
    """The events of ``count`` places, and the places' points."""
    rng = random.Random(seed)
    west, south, east, north = BOX
    events: list[dict[str, Any]] = []
    points: list[tuple[float, float]] = []
    for number in range(count):
        lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        points.append((lon, lat))
        nearest = min(SIDES, key=lambda s: math.dist(SIDES[s], (lon, lat)))
        side = nearest if rng.random() > 0.1 else rng.choice(sorted(SIDES))
        place = {
            "id": f"sy-bench-{number:05d}",
            "name": f"Place {number}",
            "kind": rng.choice(KINDS),
            "lat": round(lat, 5),
            "lon": round(lon, 5),
        }
        events.append(_event(place, "control", side, rng.choice(SOURCES)))
        draw = rng.random()
        if draw < 0.08:
            other = rng.choice(sorted(set(SIDES) - {side}))
            events.append(_event(place, "control", other, "Other Agency"))
        elif draw < 0.18:
            other = rng.choice(sorted(set(SIDES) - {side}))
            events.append(_event(place, "clash", other, rng.choice(SOURCES)))
    return events, points


def view_box(points: list[tuple[float, float]], view: int) -> tuple[float, float, float, float]:
    """A box around the middle of the front holding about ``view`` of the points."""
    west, south, east, north = BOX
    fraction = min(1.0, view / len(points))
    half_w, half_h = (
        (east - west) * math.sqrt(fraction) / 2,
        (north - south) * math.sqrt(fraction) / 2,
    )
    mid_x, mid_y = (west + east) / 2, (south + north) / 2
    return (mid_x - half_w, mid_y - half_h, mid_x + half_w, mid_y + half_h)


def summary(seconds: list[float]) -> dict[str, float]:
    """Median, p99 and worst, in ms."""
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Load the front, then time the questions."""
    settings = Settings(database_url=url, migrate_database_url=url, log_format="json")
    key = new_key()
    await grant_key(url, key)
    events, points = workload(args.places, args.seed)
    box = view_box(points, args.view)
    figures: dict[str, Any] = {"places": args.places, "events": len(events)}
    async with AsyncTestClient(app=create_app(settings)) as client:
        client.headers["authorization"] = f"Bearer {key}"
        body = "".join(json.dumps(e) + "\n" for e in events).encode()
        posted = await client.post(
            "/v1/events", content=body, headers={"content-type": "application/x-ndjson"}
        )
        if posted.status_code != 201 or posted.json()["rejected"]:
            raise RuntimeError(f"loading the front failed: {posted.text[:500]}")
        boxed = {"valid_at": "2017-06-02", "bbox": ",".join(f"{v:.4f}" for v in box)}
        # (params, headers): as a browser asks (gzip, httpx's default), and the box again
        # without compression, to show what gzip costs in the same run.
        questions: dict[str, tuple[dict[str, str], dict[str, str]]] = {
            "whole front": ({"valid_at": "2017-06-02"}, {}),
            "box": (boxed, {}),
            "box, identity": (boxed, {"accept-encoding": "identity"}),
        }
        for name, (params, headers) in questions.items():
            seconds = []
            for _ in range(max(10, args.requests // 4)):
                started = time.perf_counter()
                response = await client.get("/v1/state", params={**params, "limit": 1000})
                seconds.append(time.perf_counter() - started)
                assert response.status_code == 200
            figures[f"{name}: /v1/state alone"] = summary(seconds)
            sys.stderr.write(f"{name}: /v1/state alone: {summary(seconds)}\n")
            first = await client.get("/v1/state/areas", params=params, headers=headers)  # warm
            answer = first.json()
            seconds = []
            for _ in range(args.requests):
                started = time.perf_counter()
                response = await client.get("/v1/state/areas", params=params, headers=headers)
                seconds.append(time.perf_counter() - started)
                assert response.status_code == 200
            in_box = sum(
                1 for lon, lat in points if box[0] <= lon <= box[2] and box[1] <= lat <= box[3]
            )
            figures[name] = {
                **summary(seconds),
                "places_read": answer["places"],
                "places_in_view": args.places if name == "whole front" else in_box,
                "features": len(answer["features"]),
                "bytes": len(first.content),
                "bytes_sent": int(first.headers["content-length"]),
            }
            sys.stderr.write(f"{name}: {figures[name]}\n")
        front = await client.get("/v1/state", params={"valid_at": "2017-06-02", "limit": 1000})
        located = []
        cursor = ""
        while True:
            page = front.json()
            for item in page["items"]:
                place, segment = item["place"], item["segment"]
                located.append(
                    Located(
                        id=place["id"],
                        lon=place["lon"],
                        lat=place["lat"],
                        kind=place["kind"],
                        precision=place["precision"],
                        controller=segment["controller"],
                        status=segment["status"],
                        status_by=segment["status_by"],
                        disputed=segment["disputed"],
                        confidence=segment["confidence"],
                    )
                )
            cursor = page["next_cursor"]
            if not cursor:
                break
            front = await client.get(
                "/v1/state", params={"valid_at": "2017-06-02", "limit": 1000, "cursor": cursor}
            )
    inside = [p for p in located if box[0] <= p.lon <= box[2] and box[1] <= p.lat <= box[3]]
    countries = boundaries()
    seconds = []
    for _ in range(max(10, args.requests // 4)):
        started = time.perf_counter()
        areas(inside, countries)
        seconds.append(time.perf_counter() - started)
    figures["geometry alone"] = {**summary(seconds), "places_in_view": len(inside)}
    return figures


def table(figures: dict[str, Any], requests: int) -> str:
    """The figures as a markdown table."""
    lines = [
        f"GET /v1/state/areas, {figures['places']:,} places ({figures['events']:,} events), "
        f"{requests} requests each",
        "",
        "| question | places in view | median ms | p99 ms | max ms | KB sent |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("whole front", "box", "box, identity", "geometry alone"):
        f = figures[name]
        sent = f"{f['bytes_sent'] / 1024:,.0f}" if "bytes_sent" in f else ""
        lines.append(
            f"| {name} | {f['places_in_view']:,} | {f['median_ms']} | {f['p99_ms']} | "
            f"{f['max_ms']} | {sent} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run it; write bench/out/areas-*.json; print the table."""
    args = parser().parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    external = os.environ.get("DATABASE_URL") or None
    embedded: EmbeddedPostgres | None = None
    if external is None:
        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="frontline-areas-pg-")), True)
    try:
        server_url = embedded.start() if embedded is not None else str(external)
        url = asyncio.run(recreate_database(server_url, DATABASE))
        migrate.upgrade(url)
        figures = asyncio.run(run(url, args))
    finally:
        if embedded is not None:
            embedded.stop()
    payload = {
        "machine": machine_info("", external is not None),
        "source": source_revision(),
        "command": shlex.join([sys.executable, "-m", "bench.areas", *(argv or sys.argv[1:])]),
        "figures": figures,
    }
    out = args.out / f"areas-{stamp}.json"
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.write(table(figures, args.requests) + f"\n\nresults: {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
