"""The service crash check, short: 3 SIGKILLs while 4 writers post (the full run is 20,
`python -m reliability.crash_service`, recorded in docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

from reliability.crash_service import run


async def test_no_acknowledged_event_is_lost_or_doubled_across_kills(
    fresh_db: str, tmp_path: Path
) -> None:
    """Across three SIGKILLs of the service under four writers, no acknowledged event is lost or
    stored twice, retries of unacknowledged ones store each once, and the chain verifies."""
    report = await run(fresh_db, rounds=3, work=tmp_path)
    assert report.rounds == 3
    assert len(report.acknowledged) > 0
    assert report.lost == 0, report.lines()
    assert report.duplicated == 0, report.lines()
    assert report.retried_stored == len(report.unacknowledged)
    assert report.stored == len(report.acknowledged) + len(report.unacknowledged)
    assert report.chain_ok
