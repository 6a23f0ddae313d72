"""The conflict model's errors: an event that breaks the contract, a precondition on a place
that does not hold, an id used twice, a withdrawal by another source.

Errors of the application (a read of something absent, an import that stopped, a rebuild
under way) are ``service.errors``; those of the transport (a key, a rate, a body size) are
``service.api.errors``. ``service.api.problems`` maps every class to an RFC 9457 answer.
"""

from __future__ import annotations


class FrontlineError(Exception):
    """Base of every error Frontline raises on purpose: the conflict model's (here), the
    application's (``service.errors``) and the transport's (``service.api.errors``)."""

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


class NotTheSource(FrontlineError):
    """A ``retracts``, ``corrects`` or ``supersedes`` link to an event that another source
    made, or that another key appended (DESIGN section 3). Answered with 403 naming the link."""

    def __init__(self, detail: str, *, event_id: str, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.event_id = event_id
