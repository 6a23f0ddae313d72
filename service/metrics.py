"""What ``GET /metrics`` reports, kept by ``prometheus_client``.

A leaf: no I/O of its own beyond ``prometheus_client``'s. The request middleware and the store
feed it, ``GET /metrics`` renders it in the Prometheus text format 0.0.4.

Each :class:`Metrics` has its own registry (an app built twice in one process, as the tests
do, counts twice apart). With ``PROMETHEUS_MULTIPROC_DIR`` set (before the process starts:
``prometheus_client`` reads it at import), every process of the service writes its figures
to files in that folder and each scrape adds up those of every process, whichever process
answers it; the folder must exist, be empty when the service starts and be shared by its
processes only. Process metrics (``process_*``: CPU, memory, open files; ``python_*``: the
interpreter, its garbage collector) are those of the answering process, so they are
reported only in single-process mode, as ``prometheus_client`` itself does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.gc_collector import GCCollector
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds."""
COMMIT_BUCKETS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
"""Events in one commit."""
CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
"""The exposition's media type: the Prometheus text format 0.0.4."""
MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

# Counters and histograms without their `_created` samples: the exposition stays the names
# the README lists (a start time per series would double the lines and say nothing new).
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream


def multiprocess() -> bool:
    """Whether the figures are shared by the service's processes (``PROMETHEUS_MULTIPROC_DIR``)."""
    return bool(os.environ.get(MULTIPROCESS_ENV))


def forget_process(pid: int) -> None:
    """A worker that died (or was killed) without closing: its gauges leave the sums, as a
    clean stop's do (:meth:`Metrics.close`); its counters stay counted."""
    if multiprocess():
        mark_process_dead(pid)  # type: ignore[no-untyped-call]  # untyped upstream


@dataclass(slots=True)
class PoolUse:
    """The database pool at one moment."""

    size: int
    idle: int
    max: int


class Metrics:
    """The service's counters, histograms and gauges, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.pool: Callable[[], PoolUse] | None = None
        """The pool's use, read at every request and scrape (set by ``bootstrap.services``)."""
        self.replicas: Callable[[], list[tuple[str, int, int, float, bool]]] | None = None
        """Each read replica as the last check saw it: name, applied position, lag in
        positions and in seconds, in the rotation (set by ``bootstrap.services``)."""
        self.requests = Counter(
            "frontline_http_requests",
            "HTTP requests answered, by route and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "frontline_http_request_duration_seconds",
            "Time to answer, by route.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.events_appended = Counter(
            "frontline_events_appended",
            "Events appended by the service.",
            registry=self.registry,
        )
        self.commits = Histogram(
            "frontline_commit_events",
            "Events per commit (group commits and imports).",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        # Summed over the live processes in multiprocess mode: the service's connections.
        self.pool_connections = Gauge(
            "frontline_db_pool_connections",
            "Database connections, by state.",
            ("state",),
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.pool_max = Gauge(
            "frontline_db_pool_max",
            "Most database connections the pool opens.",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        # Each process checks the replicas itself: the worst view is the one to report.
        self.replica_lag_seconds = Gauge(
            "frontline_replica_lag_seconds",
            "Age of the oldest primary commit a read replica has not applied.",
            ("replica",),
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.replica_lag_positions = Gauge(
            "frontline_replica_lag_positions",
            "Positions a read replica trails the primary's head by.",
            ("replica",),
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.replica_applied = Gauge(
            "frontline_replica_applied_position",
            "The last log position a read replica has applied.",
            ("replica",),
            multiprocess_mode="livemin",
            registry=self.registry,
        )
        self.replica_in_rotation = Gauge(
            "frontline_replica_in_rotation",
            "1 while a read replica answers reads, 0 while it is out (down or lagging).",
            ("replica",),
            multiprocess_mode="livemin",
            registry=self.registry,
        )
        self.reads = Counter(
            "frontline_reads",
            "Reads answered, by the database that served them (primary or replica-N).",
            ("node",),
            registry=self.registry,
        )
        if not multiprocess():
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered request; ``route`` is the route's template (bounded cardinality)."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        self._read_pool()

    def observe_commit(self, events: int) -> None:
        """One commit that appended ``events`` events."""
        self.events_appended.inc(events)
        self.commits.observe(events)

    def observe_read(self, node: str) -> None:
        """One read served by ``node`` (``primary`` or ``replica-N``)."""
        self.reads.labels(node).inc()

    def render(self) -> bytes:
        """The whole exposition, Prometheus text format 0.0.4 (:data:`CONTENT_TYPE`)."""
        self._read_pool()
        self._read_replicas()
        if multiprocess():
            gathered = CollectorRegistry()
            MultiProcessCollector(gathered)  # type: ignore[no-untyped-call]  # untyped upstream
            return generate_latest(gathered)
        return generate_latest(self.registry)

    def close(self) -> None:
        """The process stops serving: in multiprocess mode its gauges (the pool's) leave the
        sums, while its counters stay counted."""
        if multiprocess():
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]  # untyped upstream

    def _read_replicas(self) -> None:
        if self.replicas is None:
            return
        for name, applied, lag_positions, lag_seconds, in_rotation in self.replicas():
            self.replica_applied.labels(name).set(applied)
            self.replica_lag_positions.labels(name).set(lag_positions)
            self.replica_lag_seconds.labels(name).set(lag_seconds)
            self.replica_in_rotation.labels(name).set(1 if in_rotation else 0)

    def _read_pool(self) -> None:
        if self.pool is None:
            return
        use = self.pool()
        self.pool_connections.labels("busy").set(use.size - use.idle)
        self.pool_connections.labels("idle").set(use.idle)
        self.pool_max.set(use.max)
