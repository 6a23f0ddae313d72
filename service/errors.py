"""Errors of the application around the conflict model: what is asked for is absent or
malformed, the database refuses or is unavailable, an import stops, a rebuild is under way,
the live streams are full. Raised by the store, the projections and the API alike (so they
live below all three); ``service.api.problems`` maps each class to an RFC 9457 answer.
"""

from __future__ import annotations

from contracts.responses import ImportResult
from service.domain.errors import FrontlineError


class TooManyStreams(FrontlineError):
    """A key holding as many live streams as one key may. Answered with 429 and
    ``Retry-After``."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class StreamsBusy(FrontlineError):
    """As many live streams without a key are open as the server serves. Answered with 503
    and ``Retry-After``."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class NotFound(FrontlineError):
    """The thing asked for does not exist. Answered with 404."""


class UnreadableFile(FrontlineError):
    """A file to import that its format's reader cannot read as a whole. Answered with 422."""


class InvalidParameter(FrontlineError):
    """A query, path or header parameter that is missing or not in its format. Answered
    with 422 ``invalid-parameter``; the detail says what it takes and what it got."""


class UnknownParameter(InvalidParameter):
    """A query parameter the route does not take. Answered with 422 ``unknown-parameter``."""


class BadUpload(FrontlineError):
    """A ``multipart/form-data`` upload that cannot be read: no boundary, a broken part, or
    not exactly one part named ``file``. Answered with 400 ``bad-upload``."""


class WriteRefused(FrontlineError):
    """The database refused a write for a reason no check foresaw. Answered with 500."""


class NotReady(FrontlineError):
    """The database is unreachable or its schema is not at head. Answered with 503."""


class ImportStopped(FrontlineError):
    """A bulk import that failed before its end. Every line up to ``through_line`` has its
    fate in ``result``; nothing after it was stored. Answered with 500."""

    def __init__(self, detail: str, *, result: ImportResult, through_line: int) -> None:
        super().__init__(detail)
        self.result = result
        self.through_line = through_line


class ImportStoppedUnavailable(ImportStopped):
    """An import stopped because the database became unavailable. Answered with 503."""


class RebuildUnderWay(FrontlineError):
    """A rebuild of the projections was asked for while one is running. Answered with 409."""


class RebuildFailed(FrontlineError):
    """A rebuild stopped before its swap (the served rows are untouched). Answered with 500."""


class RebuildInterrupted(RebuildFailed):
    """A rebuild stopped by a condition that passes (a worker killed, as the kernel does
    when memory runs out; no database connection to be had; reads holding the table past
    every try of the swap; its session ended): the served rows are untouched, and the same
    rebuild later may well succeed. Answered with 503 and Retry-After."""

    def __init__(self, detail: str, *, retry_after: int = 30) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
