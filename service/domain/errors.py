"""Domain errors. ``service.api.problems`` maps each class to an RFC 9457 answer."""

from __future__ import annotations

from contracts.responses import ImportResult


class FrontlineError(Exception):
    """Base of every error the domain or the store raises on purpose."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidEvent(FrontlineError):
    """An event breaks the contract (DESIGN section 3). Answered with 422."""


class MalformedBody(FrontlineError):
    """A body that is not JSON at all. Answered with 400."""


class NestedTooDeep(MalformedBody):
    """JSON whose arrays or objects nest deeper than any event does. Answered with 400."""


class BodyTooLarge(FrontlineError):
    """A body over the configured limit. Answered with 413."""


class BatchTooLarge(InvalidEvent):
    """A batch over the configured limit. Answered with 422."""


class IdConflict(InvalidEvent):
    """An event id already stored with different content, or a half-stored batch. 422."""

    def __init__(self, detail: str, *, event_id: str, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.event_id = event_id


class WrongExpectedVersion(FrontlineError):
    """A precondition on a place stream does not hold. Answered with 409."""

    def __init__(self, place: str, expected: int | str, actual: int) -> None:
        super().__init__(
            f"place {place!r} is at version {actual}, the request expected {expected}",
            field="expect",
        )
        self.place = place
        self.expected = expected
        self.actual = actual


class Unauthorized(FrontlineError):
    """No API key, or one the service does not know (or revoked). Answered with 401."""


class Forbidden(FrontlineError):
    """A known key whose role may not do this. Answered with 403."""


class NotTheSource(Forbidden):
    """A ``retracts``, ``corrects`` or ``supersedes`` link to an event that another source
    made, or that another key appended (DESIGN section 3). Answered with 403 naming the link."""

    def __init__(self, detail: str, *, event_id: str, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.event_id = event_id


class RateLimited(FrontlineError):
    """A key over its requests per minute. Answered with 429 and ``Retry-After``."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class TooManyStreams(RateLimited):
    """A key holding as many live streams as one key may. Answered with 429."""


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
    """A query parameter that cannot be understood. Answered with 422."""


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
