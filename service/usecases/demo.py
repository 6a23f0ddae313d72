"""The demo: the seed article's reports and the reports of the days after it, loaded as a
newsroom's feed would have committed them, one commit per publication day, in publication
order, so that ``known_at`` tells what the database said after each day.

The files are in the ``demo`` package (``demo/README.md`` says what each event encodes):
``seed.ndjson`` (the South Front report of 5 June 2017) and ``followups.ndjson`` (the days
after it: a denial, a correction, a confirmation, a second casualty figure, a contradicting
report). Another part of the demo (a registry, more reports) is one more entry of
:data:`DEMO_FILES`, or a commit given to :func:`load_demo` before or after these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Final

import msgspec

from service.domain.append import AppendRequest
from service.domain.errors import FrontlineError
from service.domain.records import prepare_event
from service.domain.validation import decode_line
from service.store.events import EventStore

DEMO_FILES: Final = ("seed.ndjson", "followups.ndjson")
"""The demo's files in the ``demo`` package; their events are committed by publication day."""


@dataclass(frozen=True, slots=True)
class DemoCommit:
    """The reports published on one day: one commit of the log."""

    published: str
    """The day the reports were published (``source.published_at``)."""
    lines: tuple[bytes, ...]
    """The events, one JSON object each, in file order."""


@dataclass(frozen=True, slots=True)
class DemoLoaded:
    """What loading the demo did: each commit's day and last position, and the counts."""

    commits: tuple[tuple[str, int], ...]
    accepted: int
    duplicate: int


class _Published(msgspec.Struct):
    published_at: str


class _Sourced(msgspec.Struct):
    source: _Published


_published = msgspec.json.Decoder(_Sourced)


def demo_files(names: Iterable[str] = DEMO_FILES) -> list[bytes]:
    """The demo's files, read from the ``demo`` package."""
    folder = resources.files("demo")
    return [folder.joinpath(name).read_bytes() for name in names]


def demo_commits(files: Sequence[bytes]) -> list[DemoCommit]:
    """The events of ``files`` grouped by the day they were published (the date part of
    ``source.published_at``), days in order, each day's events in file order."""
    days: dict[str, list[bytes]] = {}
    for data in files:
        for line in data.splitlines():
            if line.strip():
                day = _published.decode(line).source.published_at[:10]
                days.setdefault(day, []).append(line)
    return [DemoCommit(day, tuple(days[day])) for day in sorted(days)]


async def load_demo(
    store: EventStore, commits: Sequence[DemoCommit], *, submitter: str | None = None
) -> DemoLoaded:
    """Append each commit as one atomic batch, in order. The ids are fixed, so loading
    again stores nothing new (every event comes back as a duplicate). A commit the log
    refuses raises its error: the demo is the project's own data, so a refusal is a bug."""
    done: list[tuple[str, int]] = []
    accepted = duplicate = 0
    for commit in commits:
        events = tuple(prepare_event(decode_line(line)) for line in commit.lines)
        (outcome,) = await store.append_group([AppendRequest(events=events, submitter=submitter)])
        if isinstance(outcome, FrontlineError):
            raise outcome
        done.append((commit.published, max(receipt.commit_position for receipt in outcome)))
        fresh = sum(not receipt.duplicate for receipt in outcome)
        accepted += fresh
        duplicate += len(outcome) - fresh
    return DemoLoaded(tuple(done), accepted, duplicate)
