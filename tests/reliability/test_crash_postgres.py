"""The PostgreSQL crash check, short: 3 immediate stops while 4 writers post, and the canary
with up to 6 (the full run is 20, `python -m reliability.crash_postgres`, recorded in
docs/reliability.md).

Each run has a PostgreSQL of its own (it is crashed), in a folder under /tmp: when the tests
run as root the server runs as the ``postgres`` user, who cannot enter pytest's tmp_path.

Why the canary's loss is deterministic enough: it stops PostgreSQL right after a burst of
acknowledged appends (its writers post without a pause, and each stop waits for 20 more
acknowledgements), well before the 10 s of ``wal_writer_delay``. With ``synchronous_commit``
off, the WAL writer writes only whole WAL pages before that delay, so the commit records of
the last, partly filled page (the last few appends) are in shared memory only, and an
immediate stop drops them. It keeps stopping, up to 6 rounds, until an acknowledged event
is missing after a restart: one stop alone loses some almost always (seeded runs lost 5-6
acknowledged events in 2 stops), six make a miss vanishingly unlikely.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.crash_postgres import run


@pytest.fixture
def work() -> Iterator[Path]:
    """A folder for the server's data, reachable by the user the server runs as."""
    folder = Path(tempfile.mkdtemp(prefix="frontline-pgcrash-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


async def test_no_acknowledged_event_is_lost_across_postgres_crashes(work: Path) -> None:
    """After 3 immediate stops of PostgreSQL the service writes again by itself, answered
    503 (never 500) meanwhile, and the log holds every acknowledged event once, every
    retried one once, nothing twice; the chain verifies and pg_amcheck finds no corruption."""
    report = await run(3, work)
    assert report.rounds == 3
    assert len(report.acknowledged) > 0
    assert report.lost == 0, report.lines()
    assert report.duplicated == 0, report.lines()
    assert report.server_errors == 0, report.lines()
    assert len(report.ready_again) == 3, report.lines()
    assert report.retried_stored == len(report.unacknowledged)
    assert report.stored == len(report.acknowledged) + len(report.unacknowledged)
    assert report.chain_ok
    assert report.amcheck_status == 0, report.amcheck_output
    assert report.ok()


async def test_the_canary_sees_acknowledged_events_lost(work: Path) -> None:
    """With commits asynchronous (the canary), immediate stops right after acknowledged
    writes lose acknowledged events (it stops at the first loss, 6 stops at most), and the
    check reports them: it can see loss. Nothing is doubled, and what survived is still a
    valid chain in an uncorrupted database (the WAL lost is a tail)."""
    report = await run(6, work, canary=True, until_lost=True)
    assert report.lost > 0, report.lines()
    assert 1 <= report.rounds <= 6
    assert report.duplicated == 0, report.lines()
    assert report.chain_ok
    assert report.amcheck_status == 0, report.amcheck_output
    assert report.ok()
