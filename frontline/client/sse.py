"""Server-Sent Events, as ``GET /v1/events/stream`` sends them, read line by line.

A message is ``id: <position>``, ``event: event`` and ``data: <stored event JSON>`` lines
ended by a blank line; ``: heartbeat`` comments keep a quiet stream alive. The parser is
the WHATWG one reduced to what the stream uses: multi-line ``data`` is joined with newlines,
a message without data is ignored, ``retry`` is kept as the server's reconnection hint.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Message:
    """One dispatched message."""

    id: str | None
    event: str
    data: str


@dataclass
class SseParser:
    """Feed it lines (without their line ending); it returns each message as it ends."""

    last_id: str | None = None
    retry_ms: int | None = None
    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> Message | None:
        """Take one line; a message when this line ends one."""
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\x00" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Message | None:
        data, event = self._data, self._event or "message"
        self._data, self._event = [], ""
        if not data:
            return None
        return Message(id=self.last_id, event=event, data="\n".join(data))
