"""GET /metrics: the Prometheus text format, counting what the process did."""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.payloads import event_json

Client = AsyncTestClient[Litestar]
SAMPLE = re.compile(r"^([a-z_]+)(\{.*\})? (\S+)$")
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> dict[str, float]:
    """Every sample line as 'name{labels}' -> value, the labels in name order (their order
    means nothing in the format); comments checked for HELP/TYPE."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert line.startswith(("# HELP ", "# TYPE ")), line
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = sorted(LABEL.findall(match.group(2) or ""))
        braces = "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else ""
        found[match.group(1) + braces] = float(match.group(3))
    return found


async def test_requests_commits_and_the_pool_are_counted(client: Client) -> None:
    """After four POSTs (five events) and a 404, /metrics counts requests by route template and
    status, their latency, the events appended, the events per commit and the pool's size."""
    for _ in range(3):
        assert (await client.post("/v1/events", json=event_json())).status_code == 201
    batch = {"events": [event_json(), event_json()]}
    assert (await client.post("/v1/events", json=batch)).status_code == 201
    assert (await client.get("/v1/places/sy-nowhere")).status_code == 404
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    posted = 'frontline_http_requests_total{method="POST",route="/v1/events",status="201"}'
    assert found[posted] == 4
    missing = (
        'frontline_http_requests_total{method="GET",route="/v1/places/{place_id}",status="404"}'
    )
    assert found[missing] == 1
    latency = 'frontline_http_request_duration_seconds_count{method="POST",route="/v1/events"}'
    assert found[latency] == 4
    inf = (
        'frontline_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v1/events"}'
    )
    assert found[inf] == 4
    assert found["frontline_events_appended_total"] == 5
    assert found["frontline_commit_events_count"] >= 2  # group commits may join requests
    assert found["frontline_commit_events_sum"] == 5
    assert (
        found['frontline_commit_events_bucket{le="+Inf"}'] == found["frontline_commit_events_count"]
    )
    assert found["frontline_db_pool_max"] == 10
    assert found['frontline_db_pool_connections{state="busy"}'] >= 0


async def test_the_process_is_described_too(client: Client) -> None:
    """Beside the service's own figures, /metrics reports the process (CPU seconds, resident
    memory, open files), the interpreter and its garbage collector, as prometheus_client
    gathers them, and no ``_created`` series."""
    response = await client.get("/metrics")
    found = samples(response.text)
    assert found["process_resident_memory_bytes"] > 0
    assert found["process_cpu_seconds_total"] > 0
    assert found["process_open_fds"] > 0
    assert any(name.startswith("python_info{") for name in found)
    assert any(name.startswith("python_gc_collections_total{") for name in found)
    assert not [name for name in found if "_created" in name]
