"""/metrics with PROMETHEUS_MULTIPROC_DIR: the figures of every process of the service add up.

Each process is a real Python process (``prometheus_client`` chooses its storage when it is
imported, from the environment), counting into the shared folder; a third one renders.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COUNT = """
from service.metrics import Metrics
metrics = Metrics()
metrics.observe_commit({events})
metrics.observe_request("POST", "/v1/events", 201, 0.02)
"""

POOL = """
from service.metrics import Metrics, PoolUse
metrics = Metrics()
metrics.pool = lambda: PoolUse(size=4, idle=1, max=10)
metrics.observe_request("GET", "/v1/state", 200, 0.01)
{close}
"""

RENDER = """
import sys
from service.metrics import Metrics
sys.stdout.write(Metrics().render().decode())
"""


def run(code: str, folder: Path) -> str:
    """``code`` run in a fresh interpreter with the shared metrics folder."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    done = subprocess.run(  # noqa: S603 (our own interpreter, fixed code)
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_two_processes_count_into_one_exposition(tmp_path: Path) -> None:
    """Two processes append 3 and 4 events and answer one POST each; a third process's
    /metrics rendering reports 7 events in 2 commits and 2 POSTs, summed over the folder,
    and leaves out the per-process collectors (they would describe the answering process
    alone)."""
    run(COUNT.format(events=3), tmp_path)
    run(COUNT.format(events=4), tmp_path)
    text = run(RENDER, tmp_path)
    lines = set(text.splitlines())
    assert "frontline_events_appended_total 7.0" in lines
    assert "frontline_commit_events_count 2.0" in lines
    assert "frontline_commit_events_sum 7.0" in lines
    assert (
        'frontline_http_requests_total{method="POST",route="/v1/events",status="201"} 2.0' in lines
    )
    assert "process_resident_memory_bytes" not in text


def test_a_stopped_process_leaves_the_pool_sums(tmp_path: Path) -> None:
    """The pool gauges add up over the live processes: one that stopped serving (the app's
    shutdown closes its metrics) no longer counts in them, while its requests stay counted."""
    run(POOL.format(close=""), tmp_path)  # a process that died without closing
    run(POOL.format(close="metrics.close()"), tmp_path)
    lines = set(run(RENDER, tmp_path).splitlines())
    assert "frontline_db_pool_max 10.0" in lines
    assert 'frontline_db_pool_connections{state="busy"} 3.0' in lines
    assert 'frontline_http_requests_total{method="GET",route="/v1/state",status="200"} 2.0' in lines
