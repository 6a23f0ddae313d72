"""Errors of the HTTP edge: a request without a valid key, a key whose role may not do
this, too many requests, a body over the limit. Only ``service.api`` raises them;
``service.api.problems`` maps each class to an RFC 9457 answer.
"""

from __future__ import annotations

from service.domain.errors import FrontlineError


class BodyTooLarge(FrontlineError):
    """A body over the configured limit. Answered with 413."""


class Unauthorized(FrontlineError):
    """No API key, or one the service does not know (or revoked). Answered with 401."""


class Forbidden(FrontlineError):
    """A known key whose role may not do this. Answered with 403."""


class RateLimited(FrontlineError):
    """A key over its requests per minute. Answered with 429 and ``Retry-After``."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class MethodNotAllowed(FrontlineError):
    """A route that exists, asked with a method it does not take. Answered with 405 and
    ``Allow``."""

    def __init__(self, detail: str, *, allow: str) -> None:
        super().__init__(detail)
        self.allow = allow
