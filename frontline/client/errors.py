"""What the client raises: a problem the server answered (RFC 9457), or a transport that
kept failing after every retry."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from contracts.problems import CATALOGUE, TYPE_BASE
from contracts.responses import Problem

#: The members RFC 9457 defines; every other member of a problem body is an extension.
STANDARD_MEMBERS: Final = frozenset({"type", "title", "status", "detail", "instance"})


class FrontlineClientError(Exception):
    """Anything the client raises on purpose."""


class TransportError(FrontlineClientError):
    """The server could not be reached, or stopped answering, through every retry.

    ``__cause__`` is the last httpx error; ``attempts`` says how many were made.
    """

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class ProblemError(FrontlineClientError):
    """The server answered with an error: an RFC 9457 problem body (``application/problem+json``).

    ``type``, ``title``, ``status``, ``detail`` and ``instance`` are the standard members;
    ``extensions`` holds every other member as sent (Frontline's ``field``, ``place``,
    ``expected``, ``actual``, ``id``, ``request_id``, ``through_line``, ``result`` and any
    newer one); ``problem`` is the body decoded as the contract's :class:`Problem`;
    ``body`` the whole body as a dict; ``headers`` the answer's headers (``retry-after``).
    An answer that is not a problem body (a proxy's HTML page) still raises this, with
    ``type`` ``about:blank`` and the text as ``detail``.
    """

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.type: str = str(body.get("type", "about:blank"))
        self.title: str = str(body.get("title", ""))
        self.detail: str = str(body.get("detail", ""))
        instance = body.get("instance")
        self.instance: str | None = None if instance is None else str(instance)
        self.extensions: dict[str, Any] = {
            k: v for k, v in body.items() if k not in STANDARD_MEMBERS
        }
        try:
            self.problem: Problem | None = msgspec.convert(body, Problem)
        except msgspec.ValidationError:
            self.problem = None
        where = f" ({self.field})" if self.field else ""
        super().__init__(f"{status} {self.title or self.type}{where}: {self.detail}")

    @property
    def slug(self) -> str | None:
        """The problem's kind in Frontline's catalogue (``invalid-parameter``,
        ``expectation-failed``, ...: ``contracts.problems.CATALOGUE``), stable across
        releases, so a caller may branch on it; None for a type outside the catalogue (a
        proxy's answer)."""
        if not self.type.startswith(TYPE_BASE):
            return None
        slug = self.type.removeprefix(TYPE_BASE)
        return slug if slug in CATALOGUE else None

    @property
    def field(self) -> str | None:
        """The field or parameter the problem names (Frontline's ``field`` member)."""
        value = self.extensions.get("field")
        return None if value is None else str(value)


class BadRequest(ProblemError):
    """400: the body is not JSON, or nests too deep."""


class Unauthorized(ProblemError):
    """401: no key, or an unknown or revoked one."""


class Forbidden(ProblemError):
    """403: the key's role may not do this, or a withdrawal of another source's event."""


class NotFound(ProblemError):
    """404: no such event, place or route."""


class Conflict(ProblemError):
    """409: an ``expect`` precondition does not hold (``place``, ``expected``, ``actual`` in
    ``extensions``), or a rebuild is already running."""


class PayloadTooLarge(ProblemError):
    """413: a body or file over the server's limit."""


class InvalidInput(ProblemError):
    """422: an event breaks the contract, an id is reused with other content, or a
    parameter is invalid; ``field`` names it."""


class RateLimited(ProblemError):
    """429: still over a rate limit after the retries."""


class ServerError(ProblemError):
    """5xx: still failing after the retries (an import that stopped says how far it got in
    ``extensions['through_line']`` and ``extensions['result']``)."""


_BY_STATUS: Final[dict[int, type[ProblemError]]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidInput,
    429: RateLimited,
}


def problem_error(status: int, content: bytes, headers: dict[str, str]) -> ProblemError:
    """The exception for an error answer: its class by status, its body as sent."""
    body: dict[str, Any]
    try:
        decoded = msgspec.json.decode(content) if content else {}
        body = (
            decoded
            if isinstance(decoded, dict)
            else {"detail": content.decode("utf-8", "replace")[:2000]}
        )
    except msgspec.DecodeError:
        body = {"detail": content.decode("utf-8", "replace")[:2000]}
    body.setdefault("status", status)
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ProblemError)
    return cls(status, body, headers)
