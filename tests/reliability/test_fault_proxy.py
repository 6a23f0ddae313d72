"""The fault proxy check, short: one cycle of pass, latency, reset and blackhole (4.5 s each)
while 4 writers post (the full run is `python -m reliability.fault_proxy`, `make faults`,
recorded in docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

from reliability.fault_proxy import READY_BOUND, FaultProxy, run


async def test_no_2xx_without_a_committed_event_and_recovery_after_healing(
    fresh_db: str, tmp_path: Path
) -> None:
    """Through resets and a blackhole between the service and PostgreSQL: every 2xx event is
    stored once, every unacknowledged one is stored once after its retry, the chain verifies,
    no answer is a 500, /ready says 503 while the database is unreachable, and the service
    answers again once the proxy heals.

    A /ready while blackholed takes about DB_TIMEOUT (2 s): the phase is long enough for one
    to begin and end inside it on a loaded machine, and one begun in the blackhole and
    answered after it (``blackhole>pass 503``) counts too, as it was asked while the
    database was unreachable."""
    report = await run(fresh_db, tmp_path, cycles=1, phase=4.5)
    assert report.cycles == 1
    assert len(report.acknowledged) > 0
    assert report.lost == 0, report.lines()
    assert report.duplicated == 0, report.lines()
    assert report.retried_stored == len(report.unacknowledged), report.lines()
    assert report.stored == len(report.acknowledged) + len(report.unacknowledged)
    assert report.chain_ok
    assert report.server_errors == 0, report.lines()
    assert report.ready_answers["reset 503"] > 0, report.lines()
    blackholed_503 = sum(
        n
        for label, n in report.ready_answers.items()
        if label.startswith("blackhole") and label.endswith(" 503")
    )
    assert blackholed_503 > 0, report.lines()
    assert report.ready_200_while_unreachable == 0, report.lines()
    assert report.faulted_2xx() == 0, report.lines()
    assert report.slowest_ready_faulted <= READY_BOUND, report.lines()
    assert report.recovery_seconds is not None, report.lines()
    assert report.ok()


def test_the_proxy_fronts_a_tcp_or_a_unix_socket_url_and_keeps_its_credentials() -> None:
    """A URL naming a socket folder (the embedded server's) is proxied to its socket, a TCP
    URL to its host and port; the proxy's URL keeps user, password and database, points at
    127.0.0.1 and the proxy's port, and asks for no TLS on loopback."""
    embedded = FaultProxy.for_url("postgresql://postgres:@/frontline_t?host=/run/pg-sock")
    assert embedded.upstream_socket == "/run/pg-sock/.s.PGSQL.5432"
    tcp = FaultProxy.for_url("postgresql://app:s%40cret@db.example:6543/frontline")
    assert (tcp.upstream_host, tcp.upstream_port, tcp.upstream_socket) == (
        "db.example",
        6543,
        None,
    )
    tcp.port = 40001
    assert tcp.url("postgresql://app:s%40cret@db.example:6543/frontline") == (
        "postgresql://app:s%40cret@127.0.0.1:40001/frontline?sslmode=disable"
    )
    embedded.port = 40002
    assert embedded.url("postgresql://postgres:@/frontline_t?host=/run/pg-sock") == (
        "postgresql://postgres:@127.0.0.1:40002/frontline_t?sslmode=disable"
    )
