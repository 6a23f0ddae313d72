"""The rate limit's token buckets (service/api/ratelimit.py): no span of time admits more
than the limit plus what the span refills, wherever it falls; steady traffic at the rate
always passes; Retry-After is honest; the table stays bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.api.ratelimit import WINDOW, RateLimiter

arrivals = st.lists(st.floats(min_value=0, max_value=300, allow_nan=False), max_size=400).map(
    sorted
)


@given(limit=st.integers(min_value=1, max_value=120), times=arrivals)
def test_no_span_admits_more_than_the_limit_and_its_refill(limit: int, times: list[float]) -> None:
    """For any arrivals, the requests passed within any span of s seconds number at most
    limit * (1 + s / 60): a burst of the bucket, then the steady rate."""
    limiter = RateLimiter(limit)
    passed = [t for t in times if limiter.take("k", t).allowed]
    for i, start in enumerate(passed):
        for j in range(i, len(passed)):
            span = passed[j] - start
            assert j - i + 1 <= limit * (1 + span / WINDOW) + 1e-6, (limit, start, span)


@given(limit=st.integers(min_value=1, max_value=600))
def test_a_full_bucket_passes_a_burst_of_the_limit_then_refuses(limit: int) -> None:
    """At one instant a fresh identity passes exactly ``limit`` requests; the next is refused
    with a Retry-After of the seconds one token takes to come back (rounded up)."""
    limiter = RateLimiter(limit)
    assert all(limiter.take("k", 100.0).allowed for _ in range(limit))
    refused = limiter.take("k", 100.0)
    assert not refused.allowed
    assert refused.retry_after == max(1, -(-WINDOW // limit))
    assert limiter.peek("k", 100.0).allowed is False
    assert limiter.take("k", 100.0 + refused.retry_after).allowed


def test_the_fixed_window_burst_of_issue_13_is_refused() -> None:
    """50 requests at 59.5 s and 50 more at 60.1 s (a minute boundary between them): the
    fixed window passed all 100 (69 in one second in issue 13's run); the bucket passes 50."""
    limiter = RateLimiter(50)
    times = [59.5 + i * 0.001 for i in range(50)] + [60.1 + i * 0.001 for i in range(50)]
    assert sum(limiter.take("k", t).allowed for t in times) == 50


def test_steady_traffic_at_the_rate_always_passes() -> None:
    """One request every 60/limit seconds, for ten minutes, is never refused."""
    limiter = RateLimiter(120)
    assert all(limiter.take("k", i * 0.5).allowed for i in range(1200))


def test_identities_are_counted_apart_and_the_table_is_bounded() -> None:
    """Each identity has its own bucket; full buckets are forgotten, and the table never
    holds more than ``entries`` identities (the least recently used go first)."""
    limiter = RateLimiter(2, entries=100)
    assert limiter.take("a", 0).allowed
    assert limiter.take("a", 0).allowed
    assert not limiter.take("a", 0).allowed
    assert limiter.take("b", 0).allowed
    for n in range(1000):
        limiter.take(f"client-{n}", 1.0)
    assert len(limiter) <= 100
    limiter.take("late", 1000.0)  # every earlier bucket is full again by now
    assert len(limiter) == 1


def test_no_limit_passes_everything() -> None:
    """A limit of 0 means no limit, and remembers nothing."""
    limiter = RateLimiter(0)
    assert all(limiter.take("k", 0).allowed for _ in range(10_000))
    assert len(limiter) == 0
