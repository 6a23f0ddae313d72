"""An event read through the registries (``service.domain.reading``): the canonical side and
display name of its side and opponent, the registered source's name, grade and alignment;
a name no entry knows reads as itself; the reader reads each distinct statement once."""

from __future__ import annotations

import msgspec

from contracts.events import SideRegistered, SourceRegistered
from service.domain.reading import EventReader, side_as_known
from service.domain.registry import EMPTY, SideRegistry


def _registry() -> SideRegistry:
    """The government with PLOVER's label as alias, and Reuters graded A with an alias."""
    found = EMPTY.stated(
        SideRegistered(
            side="syrian-government",
            name="Syrian government forces",
            kind="state_force",
            aliases=("syrian-arab-army",),
        ),
        version=1,
        position=5,
        submitter=None,
    )
    return found.stated(
        SourceRegistered(source="Reuters", reliability="A", aliases=("Reuters UK",)),
        version=1,
        position=6,
        submitter=None,
    )


def _payload(side: str | None, opponent: str | None, source: dict[str, str]) -> bytes:
    event: dict[str, object] = {"type": "clash", "source": source}
    if side is not None:
        event["side"] = side
    if opponent is not None:
        event["opponent"] = opponent
    return msgspec.json.encode(event)


def test_an_alias_and_an_aliased_source_read_as_registered() -> None:
    """The label reads as the government with its display name; the unknown opponent as
    itself with no name; a source named by its alias reads as the registered source, its
    grade and alignment the registry's whatever the event stated."""
    reader = EventReader(_registry(), 9)
    read = reader.read(
        _payload(
            "syrian-arab-army",
            "tiger-forces",
            {"name": "reuters  uk", "reliability": "E", "alignment": "syrian-arab-army"},
        )
    )
    assert (read.known_position, read.side, read.side_name) == (
        9,
        "syrian-government",
        "Syrian government forces",
    )
    assert (read.opponent, read.opponent_name) == ("tiger-forces", None)
    assert (read.source, read.reliability, read.alignment, read.registered_source) == (
        "Reuters",
        "A",
        "neutral",
        True,
    )


def test_an_unregistered_source_keeps_its_grade_and_its_alignment_reads_canonical() -> None:
    """A source no entry registers keeps the grade it stated; its alignment, a side label,
    reads as the side; no side at all reads as none."""
    read = EventReader(_registry(), 9).read(
        _payload(None, None, {"name": "SANA", "reliability": "C", "alignment": "syrian-arab-army"})
    )
    assert (read.side, read.side_name, read.opponent) == (None, None, None)
    assert (read.source, read.reliability, read.alignment, read.registered_source) == (
        "SANA",
        "C",
        "syrian-government",
        False,
    )
    assert side_as_known(_registry(), None) == (None, None)


def test_the_reader_reads_each_distinct_statement_once() -> None:
    """Two payloads stating the same fields (other text aside) share one reading; a
    different grade is read on its own."""
    reader = EventReader(EMPTY, 3)
    source = {"name": "AFP", "reliability": "B"}
    first = reader.read(_payload("isis", None, source))
    again = reader.read(_payload("isis", None, source).replace(b"clash", b"strike"))
    other = reader.read(_payload("isis", None, {**source, "reliability": "C"}))
    assert again is first
    assert other is not first
    assert other.reliability == "C"
