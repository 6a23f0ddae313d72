"""When to retry, and how long to wait: the same rule for the sync and the async client.

Retrying a write is safe because every event the client sends carries an id (the caller's,
or one derived by the contract's :func:`contracts.idempotency.keyed_event_id` before the
first attempt): a retry of something already stored comes back as a duplicate, never as a
second event.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

#: Statuses worth another try: over a rate limit, and the server's or a proxy's failures.
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})

#: Transport failures worth another try: the connection could not be made, broke, or timed
#: out (the request may or may not have reached the server: the ids make that safe).
RETRY_ERRORS: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class Retry:
    """How many attempts a request gets, and the waits between them.

    The wait before attempt ``n + 1`` is the answer's ``Retry-After`` when it has one (up to
    ``max_retry_after`` seconds; a longer one is not waited for: the error is raised), else
    ``backoff * 2 ** (n - 1)`` capped at ``max_backoff``, with jitter (between half and all
    of it) so that many clients do not retry in step.
    """

    attempts: int = 5
    """Attempts in all, the first included (1: never retry)."""
    backoff: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 120.0
    statuses: frozenset[int] = field(default=RETRY_STATUSES)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Retry.attempts must be at least 1")

    def backoff_delay(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (1-based) when the server named none."""
        ceiling: float = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        jitter: float = 0.5 + random.random() / 2  # noqa: S311 (jitter, not a secret)
        return ceiling * jitter

    def delay(self, attempt: int, retry_after: str | None) -> float | None:
        """The wait before the next attempt, or None when there is none to make."""
        if attempt >= self.attempts:
            return None
        if retry_after is not None:
            seconds = retry_after_seconds(retry_after)
            if seconds is not None:
                return seconds if seconds <= self.max_retry_after else None
        return self.backoff_delay(attempt)


NO_RETRY: Final = Retry(attempts=1)


def retry_after_seconds(value: str, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: delay-seconds or an HTTP-date (RFC 9110 10.2.3); None when
    it is neither."""
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
