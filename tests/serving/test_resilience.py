"""Circuit breaker, deadlines and token bucket, each driven by a fake clock."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgate.serving.resilience import CircuitBreaker, TokenBucket


class FakeClock:
    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- circuit breaker -------------------------------------------------------------------------


def state_of(breaker: CircuitBreaker) -> str:
    """The state as a plain str, so that mypy does not narrow it across calls."""
    return breaker.state


def test_breaker_opens_after_consecutive_failures_only() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=10.0, clock=clock)
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()  # breaks the run
    for _ in range(2):
        breaker.record_failure()
    assert state_of(breaker) == "closed" and breaker.allow()
    breaker.record_failure()
    assert state_of(breaker) == "open"
    assert not breaker.allow()


def test_breaker_admits_exactly_one_probe_after_the_timeout() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=10.0, clock=clock)
    breaker.record_failure()
    clock.now += 9.999
    assert not breaker.allow()
    assert state_of(breaker) == "open"  # reading the state never moves it
    clock.now += 0.001
    assert breaker.allow()
    assert state_of(breaker) == "half_open"
    assert [breaker.allow() for _ in range(5)] == [False] * 5
    breaker.record_success()
    assert state_of(breaker) == "closed"
    assert all(breaker.allow() for _ in range(5))


def test_failed_probe_reopens_for_a_full_timeout() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=10.0, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 10.0
    assert breaker.allow()
    clock.now += 3.0
    breaker.record_failure()
    assert state_of(breaker) == "open"
    clock.now += 9.0
    assert not breaker.allow()
    clock.now += 1.0
    assert breaker.allow() and state_of(breaker) == "half_open"


def test_lost_probe_is_replaced_after_the_timeout() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=10.0, clock=clock)
    breaker.record_failure()
    clock.now += 10.0
    assert breaker.allow()  # this probe's caller vanishes without reporting
    clock.now += 5.0
    assert not breaker.allow()
    clock.now += 5.0
    assert breaker.allow()


def test_stragglers_do_not_move_an_open_breaker() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=10.0, clock=clock)
    breaker.record_failure()
    clock.now += 6.0
    breaker.record_success()
    breaker.record_failure()
    assert state_of(breaker) == "open"
    clock.now += 4.0
    assert breaker.allow()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"failure_threshold": 0}, "failure_threshold"), ({"reset_timeout_s": 0.0}, "reset_timeout")],
)
def test_breaker_settings_are_validated(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]


@dataclass
class ReferenceBreaker:
    """The specification, written as plainly as possible."""

    threshold: int
    timeout: float
    state: str = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probe_at: float | None = None

    def allow(self, now: float) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open":
            if now >= self.opened_at + self.timeout:
                self.state, self.probe_at = "half_open", now
                return True
            return False
        assert self.probe_at is not None
        if now >= self.probe_at + self.timeout:  # the probe was lost
            self.probe_at = now
            return True
        return False

    def success(self) -> None:
        if self.state != "open":
            self.state, self.failures = "closed", 0

    def failure(self, now: float) -> None:
        if self.state == "open":
            return
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.threshold:
            self.state, self.opened_at = "open", now


ops = st.lists(
    st.one_of(
        st.sampled_from(["allow", "success", "failure"]),
        st.sampled_from([0.5, 1.0, 2.5, 5.0, 10.0]),
    ),
    max_size=60,
)


@settings(max_examples=300)
@given(threshold=st.integers(min_value=1, max_value=4), steps=ops)
def test_breaker_matches_the_reference_model(threshold: int, steps: list[str | float]) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=threshold, reset_timeout_s=5.0, clock=clock)
    reference = ReferenceBreaker(threshold, 5.0)
    probes_since_tick = 0
    for step in steps:
        if isinstance(step, float):
            clock.now += step
            probes_since_tick = 0
        elif step == "allow":
            was_closed = state_of(breaker) == "closed"
            allowed = breaker.allow()
            assert allowed == reference.allow(clock.now)
            if allowed and not was_closed:
                probes_since_tick += 1
                assert probes_since_tick == 1, "two probes at one moment"
        elif step == "success":
            breaker.record_success()
            reference.success()
        else:
            breaker.record_failure()
            reference.failure(clock.now)
        assert state_of(breaker) == reference.state


def test_an_abandoned_probe_lets_the_next_caller_probe_at_once() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=10.0, clock=clock)
    breaker.record_failure()
    clock.now += 10.0
    assert breaker.allow() and breaker.state == "half_open"
    assert not breaker.allow()  # the probe is out
    breaker.abandon_probe()  # it was shed before reaching the model
    assert breaker.state == "open"
    assert breaker.allow() and breaker.state == "half_open"
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.abandon_probe()  # closed: nothing to give back
    assert breaker.state == "closed"


# --- token bucket ----------------------------------------------------------------------------


def test_bucket_allows_a_burst_then_the_sustained_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, 3, clock=clock)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after_s() == pytest.approx(0.5)
    clock.now += 0.25
    assert not bucket.try_acquire()
    assert bucket.retry_after_s() == pytest.approx(0.25)
    clock.now += 0.25
    assert bucket.retry_after_s() == 0.0
    assert bucket.try_acquire() and not bucket.try_acquire()
    clock.now += 100.0  # refills only up to the burst
    assert sum(bucket.try_acquire() for _ in range(10)) == 3


def test_bucket_survives_a_clock_stepping_back() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1.0, 1, clock=clock)
    clock.now -= 50.0
    assert bucket.try_acquire()
    assert not bucket.try_acquire()


@pytest.mark.parametrize(
    ("rate", "burst"), [(0.0, 1), (-1.0, 1), (float("nan"), 1), (float("inf"), 1), (1.0, 0)]
)
def test_bucket_settings_are_validated(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


@given(
    rate=st.floats(min_value=0.1, max_value=100.0),
    burst=st.integers(min_value=1, max_value=20),
    steps=st.lists(st.floats(min_value=0.0, max_value=2.0), max_size=80),
)
def test_bucket_never_grants_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, steps: list[float]
) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate, burst, clock=clock)
    granted, elapsed = 0, 0.0
    for dt in steps:
        clock.now += dt
        elapsed += dt
        wait = bucket.retry_after_s()
        ok = bucket.try_acquire()
        assert ok == (wait == 0.0)
        granted += ok
        assert granted <= burst + math.floor(rate * elapsed + 1e-9) + 1e-9
