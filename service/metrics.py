"""Counters and histograms of this process, rendered in the Prometheus text format (0.0.4).

Pure bookkeeping, no I/O: the request middleware and the store feed it, ``GET /metrics``
renders it. Counted per process, as every figure here is.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds."""
COMMIT_BUCKETS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
"""Events in one commit."""


@dataclass(slots=True)
class Histogram:
    """Counts by upper bound (not cumulative until rendered), a sum and a count."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str) -> Iterable[str]:
        running = 0
        joiner = "," if labels else ""
        uppers = [_number(bound) for bound in self.bounds] + ["+Inf"]
        for upper, count in zip(uppers, self.counts, strict=True):
            running += count
            yield f'{name}_bucket{{{labels}{joiner}le="{upper}"}} {running}'
        braces = f"{{{labels}}}" if labels else ""
        yield f"{name}_sum{braces} {_number(self.total)}"
        yield f"{name}_count{braces} {self.count}"


@dataclass(slots=True)
class PoolUse:
    """The database pool at one moment."""

    size: int
    idle: int
    max: int


class Metrics:
    """What ``GET /metrics`` reports."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[tuple[str, str], Histogram] = {}
        self.events_appended = 0
        self.commits = Histogram(COMMIT_BUCKETS)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered request; ``route`` is the route's template (bounded cardinality)."""
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.latency.get((method, route))
        if histogram is None:
            histogram = self.latency[(method, route)] = Histogram(LATENCY_BUCKETS)
        histogram.observe(seconds)

    def observe_commit(self, events: int) -> None:
        """One commit that appended ``events`` events."""
        self.events_appended += events
        self.commits.observe(events)

    def render(self, pool: PoolUse) -> str:
        """The whole exposition, Prometheus text format 0.0.4."""
        out = [
            "# HELP frontline_http_requests_total HTTP requests answered, by route and status.",
            "# TYPE frontline_http_requests_total counter",
        ]
        for (method, route, status), count in sorted(self.requests.items()):
            labels = f'method="{method}",route="{_escape(route)}",status="{status}"'
            out.append(f"frontline_http_requests_total{{{labels}}} {count}")
        out += [
            "# HELP frontline_http_request_duration_seconds Time to answer, by route.",
            "# TYPE frontline_http_request_duration_seconds histogram",
        ]
        for (method, route), histogram in sorted(self.latency.items()):
            labels = f'method="{method}",route="{_escape(route)}"'
            out.extend(histogram.lines("frontline_http_request_duration_seconds", labels))
        out += [
            "# HELP frontline_events_appended_total Events appended by this process.",
            "# TYPE frontline_events_appended_total counter",
            f"frontline_events_appended_total {self.events_appended}",
            "# HELP frontline_commit_events Events per commit (group commits and imports).",
            "# TYPE frontline_commit_events histogram",
            *self.commits.lines("frontline_commit_events", ""),
            "# HELP frontline_db_pool_connections Database connections, by state.",
            "# TYPE frontline_db_pool_connections gauge",
            f'frontline_db_pool_connections{{state="busy"}} {pool.size - pool.idle}',
            f'frontline_db_pool_connections{{state="idle"}} {pool.idle}',
            "# HELP frontline_db_pool_max Most database connections the pool opens.",
            "# TYPE frontline_db_pool_max gauge",
            f"frontline_db_pool_max {pool.max}",
        ]
        return "\n".join(out) + "\n"


def _number(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else repr(float(value))


def _escape(text: str) -> str:
    """A label value as the text format wants it: backslash, quote and newline escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
