"""Requests per identity per minute, as token buckets (GCRA). Pure: the caller gives the time.

Each identity (a key's name, or a client address) has a bucket of ``limit`` tokens, refilled
at ``limit`` tokens a minute; a request takes one, and is refused when the bucket is empty.
So a burst may use the whole bucket at once, and past it requests pass at the steady rate:
no span of ``t`` seconds admits more than ``limit * (1 + t / 60)`` requests, wherever it
falls. A fixed one-minute window, which this replaces, let a burst of ``limit`` through at
the end of one minute and another at the start of the next (69 requests in one second
against a limit of 50, in issue 13's run).

A bucket is stored as one number (the generic cell rate algorithm's *theoretical arrival
time*): the moment the bucket will be full again. A full bucket needs no entry, so the
table holds only identities seen within the last minute, and never more than ``entries``
of them (the least recently used goes first; forgetting one only forgives it).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

WINDOW = 60.0
"""Seconds over which ``limit`` tokens refill."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a request may pass, and if not, in how many whole seconds a token is back."""

    allowed: bool
    retry_after: int = 0


class RateLimiter:
    """Token buckets of ``limit`` requests per minute, by identity."""

    def __init__(self, limit: int, entries: int = 100_000) -> None:
        self.limit = limit
        self.entries = entries
        self._full_at: OrderedDict[str, float] = OrderedDict()

    @property
    def interval(self) -> float:
        """Seconds one token takes to come back."""
        return WINDOW / self.limit

    def take(self, identity: str, now: float) -> Verdict:
        """Take one token from ``identity``'s bucket at time ``now`` (seconds, monotonic)."""
        if self.limit <= 0:
            return Verdict(allowed=True)
        interval = self.interval
        full_at = max(self._full_at.get(identity, now), now)
        # Passing takes one interval; the bucket may run at most WINDOW ahead of now.
        if full_at + interval - now > WINDOW + 1e-9:
            wait = full_at + interval - WINDOW - now
            return Verdict(allowed=False, retry_after=max(1, math.ceil(wait)))
        self._full_at[identity] = full_at + interval
        self._full_at.move_to_end(identity)
        self._forget(now)
        return Verdict(allowed=True)

    def peek(self, identity: str, now: float) -> Verdict:
        """Whether ``take`` would pass now, without taking anything."""
        if self.limit <= 0:
            return Verdict(allowed=True)
        full_at = max(self._full_at.get(identity, now), now)
        wait = full_at + self.interval - WINDOW - now
        if wait > 1e-9:
            return Verdict(allowed=False, retry_after=max(1, math.ceil(wait)))
        return Verdict(allowed=True)

    def __len__(self) -> int:
        return len(self._full_at)

    def _forget(self, now: float) -> None:
        """Drop full buckets from the old end, and the least recent past ``entries``."""
        while self._full_at:
            identity, full_at = next(iter(self._full_at.items()))
            if full_at > now and len(self._full_at) <= self.entries:
                return
            del self._full_at[identity]
