"""Resilience primitives for the data plane: circuit breaker and rate limits.

Deadlines are enforced by the batcher, which owns the queue a request waits in.

Each is a small state machine over an injected clock, so that tests can drive
time by hand and one process can hold one instance per model version or client
without any module-level state.

The circuit breaker follows the closed / open / half-open pattern (Nygard,
*Release It!*, 2nd ed., ch. 5): stop calling a model that keeps failing, then
let a single probe find out whether it has recovered. The rate limiter is the
classic token bucket (as in RFC 2697's committed bucket): ``burst`` tokens,
refilled at ``rate_per_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

__all__ = ["BreakerState", "CircuitBreaker", "TokenBucket"]

T = TypeVar("T")
BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Fail fast on a model version that keeps failing, and probe it for recovery.

    ``failure_threshold`` consecutive failures open the breaker; after
    ``reset_timeout_s`` one caller at a time is let through as a probe. Its
    success closes the breaker, its failure opens it for another timeout. A
    probe whose outcome is never recorded (its caller was cancelled) is taken
    as lost after ``reset_timeout_s``, so the breaker cannot stay half-open for
    good. ``state`` reports without side effects: an open breaker whose timeout
    has passed still reads "open" until ``allow`` admits the probe.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold!r}")
        if not reset_timeout_s > 0.0:
            # Zero would let every caller through as a "probe" at the same moment.
            raise ValueError(f"reset_timeout_s must be > 0, got {reset_timeout_s!r}")
        self._threshold = failure_threshold
        self._reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._since = 0.0  # when the breaker opened, or when the current probe went out

    @property
    def state(self) -> BreakerState:
        return self._state

    def allow(self) -> bool:
        """Whether a call may go to the model now; in half-open, True means "you are the probe"."""
        if self._state == "closed":
            return True
        now = self._clock()
        if now - self._since < self._reset_timeout_s:
            return False  # open and cooling down, or a probe is out
        self._state = "half_open"
        self._since = now
        return True

    def record_success(self) -> None:
        """A call answered: a probe closes the breaker; in closed it ends the failure run."""
        if self._state == "open":
            return  # a straggler admitted before the breaker opened proves nothing
        self._state = "closed"
        self._failures = 0

    def abandon_probe(self) -> None:
        """The probe let through never reached the model (shed, queue full): let the next
        caller probe at once instead of waiting out another ``reset_timeout_s``."""
        if self._state == "half_open":
            self._state = "open"
            self._since = self._clock() - self._reset_timeout_s

    def record_failure(self) -> None:
        """A call failed: count it, and open the breaker at the threshold or on a failed probe."""
        if self._state == "open":
            return  # stragglers do not extend the cool-down
        self._failures += 1
        if self._state == "half_open" or self._failures >= self._threshold:
            self._state = "open"
            self._since = self._clock()


class TokenBucket:
    """Per-client rate limit: up to ``burst`` calls at once, ``rate_per_s`` sustained."""

    def __init__(
        self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not rate_per_s > 0.0 or rate_per_s == float("inf"):
            raise ValueError(f"rate_per_s must be a finite number > 0, got {rate_per_s!r}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self._rate = rate_per_s
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def try_acquire(self) -> bool:
        """Take one token if there is one; False means answer 429."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def retry_after_s(self) -> float:
        """Seconds until the next token, 0 when one is available now."""
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self._rate)

    def _refill(self) -> None:
        now = self._clock()
        # max(): a clock that steps back must not drain the bucket.
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._updated = now
