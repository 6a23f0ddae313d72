"""Events on their way out: ids given where the caller gave none, NDJSON cut into chunks.

Every event the client sends carries an id, so that a retry can never store it twice. An
event without one gets the id :func:`contracts.idempotency.keyed_event_id` derives from the
call's key and the event's index: the server's own derivation for an ``Idempotency-Key``
(0 for one event, ``i`` for ``events[i]``, the line number minus one in an NDJSON stream).
So the ids a chunked stream gets are those the server would give the whole stream posted
at once with ``Idempotency-Key: <key>``, and the same key (``idempotency_key=``) run again
names the same events.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, TypeAlias, cast

import msgspec

from contracts.events import Event
from contracts.idempotency import keyed_event_id
from contracts.responses import ImportResult, RejectedLine

EventLike: TypeAlias = Event | Mapping[str, Any]
"""An event as a contract struct (``contracts.events.Capture`` ...) or as a JSON-like dict."""

NdjsonSource: TypeAlias = str | os.PathLike[str] | IO[bytes] | Iterable[EventLike | bytes]
"""What an NDJSON import reads: a file's path (``str`` is a path), a binary file, or an
iterable of events (structs or dicts) or of raw NDJSON lines (``bytes``)."""

_encode: Final = msgspec.json.Encoder().encode


def new_key() -> str:
    """A fresh idempotency key for one call (a UUID, as the header's draft advises)."""
    return str(uuid.uuid4())


def with_id(event: EventLike, key: str, index: int) -> EventLike:
    """``event`` with its own id, or the id ``key`` and ``index`` derive when it has none."""
    if isinstance(event, Mapping):
        if event.get("id") is not None:
            return event
        return {**event, "id": str(keyed_event_id(key, index))}
    if event.id is not None:
        return event
    return msgspec.structs.replace(event, id=keyed_event_id(key, index))


def encode(event: EventLike) -> bytes:
    """The event's JSON (a struct as the contract encodes it, a dict as given)."""
    return _encode(event)


class _IdPeek(msgspec.Struct):
    """Just the ``id`` member of a line (unset: the line has none)."""

    id: Any = msgspec.UNSET


_peek: Final = msgspec.json.Decoder(_IdPeek)


def stamp_line(line: bytes, key: str, index: int) -> bytes:
    """An NDJSON line with an id: as it is when it has one, or when it is no JSON object at
    all (the server then rejects it under its line number); else with the derived id."""
    try:
        peeked = _peek.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return line
    if peeked.id is not msgspec.UNSET and peeked.id is not None:
        return line
    derived = str(keyed_event_id(key, index)).encode()
    if peeked.id is None:  # "id": null: written again with the id in its place
        whole = msgspec.json.decode(line)
        whole["id"] = derived.decode()
        return _encode(whole)
    body = line.lstrip()[1:]  # after the opening brace
    separator = b"" if body.lstrip().startswith(b"}") else b","
    return b'{"id":"' + derived + b'"' + separator + body


def numbered_lines(source: NdjsonSource, key: str) -> Iterator[tuple[int, bytes]]:
    """``(line number, line with an id)`` of every non-blank line, one at a time."""
    if isinstance(source, str | os.PathLike):
        with Path(source).open("rb") as handle:
            yield from _file_lines(handle, key)
        return
    if isinstance(source, io.IOBase) or hasattr(source, "read"):
        yield from _file_lines(cast("IO[bytes]", source), key)
        return
    for number, item in enumerate(source, 1):
        if isinstance(item, bytes):
            line = item.rstrip(b"\n")
            if line and not line.isspace():
                yield number, stamp_line(line, key, number - 1)
        else:
            yield number, encode(with_id(item, key, number - 1))


def _file_lines(handle: IO[bytes], key: str) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(handle, 1):
        line = raw.rstrip(b"\n")
        if line and not line.isspace():
            yield number, stamp_line(line, key, number - 1)


@dataclass
class Chunk:
    """Lines to send in one request, and the line number of each in the whole stream."""

    body: bytes
    numbers: list[int]


def chunks(
    lines: Iterable[tuple[int, bytes]], *, max_lines: int, max_bytes: int
) -> Iterator[Chunk]:
    """Lines grouped into chunks of at most ``max_lines`` lines and about ``max_bytes`` bytes
    (a longer line is a chunk alone): memory holds one chunk, whatever the stream's size."""
    parts: list[bytes] = []
    numbers: list[int] = []
    size = 0
    for number, line in lines:
        if parts and (len(parts) >= max_lines or size + len(line) + 1 > max_bytes):
            yield Chunk(b"\n".join(parts) + b"\n", numbers)
            parts, numbers, size = [], [], 0
        parts.append(line)
        numbers.append(number)
        size += len(line) + 1
    if parts:
        yield Chunk(b"\n".join(parts) + b"\n", numbers)


@dataclass
class Tally:
    """The results of a stream's chunks added up, line numbers those of the whole stream."""

    max_errors: int = 1000
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    flagged: int = 0
    last_position: int | None = None
    errors: list[RejectedLine] = field(default_factory=list)
    flags: list[RejectedLine] = field(default_factory=list)

    def add(self, part: ImportResult, numbers: list[int]) -> None:
        """Count one chunk's result (its lines renumbered as in the stream)."""
        self.accepted += part.accepted
        self.duplicate += part.duplicate
        self.rejected += part.rejected
        self.flagged += part.flagged
        if part.last_position is not None:
            self.last_position = part.last_position
        for listed, found in ((self.errors, part.errors), (self.flags, part.flags)):
            room = self.max_errors - len(listed)
            listed.extend(_renumbered(line, numbers) for line in found[: max(room, 0)])

    def result(self) -> ImportResult:
        """The stream's result, shaped as the server's."""
        return ImportResult(
            accepted=self.accepted,
            duplicate=self.duplicate,
            rejected=self.rejected,
            errors=self.errors,
            last_position=self.last_position,
            flagged=self.flagged,
            flags=self.flags,
        )


def _renumbered(line: RejectedLine, numbers: list[int]) -> RejectedLine:
    if 1 <= line.line <= len(numbers):
        return msgspec.structs.replace(line, line=numbers[line.line - 1])
    return line
