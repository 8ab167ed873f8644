"""ConcurrencyLimit: AIMD on requests in flight, driven by a fake clock and chosen latencies."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlgate.serving.overload import DEADLINE_SHARE, ConcurrencyLimit, LoopLag


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _window(limit: ConcurrencyLimit, clock: Clock, latency_s: float, count: int) -> None:
    """Fill the limit to ``count`` in flight, release all at ``latency_s``, end the window."""
    taken = sum(limit.acquire() for _ in range(count))
    for _ in range(taken - 1):
        limit.release(latency_s)
    clock.now += 1.0
    limit.release(latency_s)  # the window's last release adapts the limit


def test_requests_over_the_limit_are_refused_and_slots_come_back() -> None:
    limit = ConcurrencyLimit(initial=3, minimum=1, clock=Clock())
    assert [limit.acquire() for _ in range(4)] == [True, True, True, False]
    assert limit.in_flight == 3
    limit.release(0.001)
    assert limit.acquire()


def test_latency_over_target_shrinks_the_limit_and_under_it_grows_a_used_limit() -> None:
    clock = Clock()
    limit = ConcurrencyLimit(target_latency_s=0.010, initial=100, minimum=2, clock=clock)
    _window(limit, clock, 0.011, 100)  # a little over: the smallest cut
    assert limit.limit == 90
    _window(limit, clock, 0.050, 90)  # far over: cut in proportion, at most by half
    assert limit.limit == 45
    for _ in range(40):
        _window(limit, clock, 0.050, 200)
    assert limit.limit == 2  # never below the minimum
    _window(limit, clock, 0.008, 2)  # under target, limit in use: +1
    assert limit.limit == 3
    _window(limit, clock, 0.001, 3)  # well under: grows by a fifth, at least by one
    assert limit.limit == 4
    for _ in range(5):
        _window(limit, clock, 0.001, limit.limit)
    assert limit.limit == 10  # 5, 6, 7.2, 8.64, 10.37: by a fifth, at least one


def test_an_unused_limit_does_not_grow() -> None:
    clock = Clock()
    limit = ConcurrencyLimit(target_latency_s=0.010, initial=50, clock=clock)
    for _ in range(10):
        _window(limit, clock, 0.001, 3)  # a light load far below the limit
    assert limit.limit == 50


def test_the_target_includes_twice_the_model_call_time() -> None:
    clock = Clock()
    service = [0.0]
    limit = ConcurrencyLimit(
        target_latency_s=0.010, initial=10, clock=clock, service_time=lambda: service[0]
    )
    service[0] = 0.030  # a slow model: 30 ms per call is its normal, not overload
    assert limit.target_s == pytest.approx(0.070)
    _window(limit, clock, 0.060, 10)
    assert limit.limit == 11


def test_the_endpoint_deadline_caps_the_target() -> None:
    """A 50 ms endpoint steers to 20 ms, not to 10 ms + twice a 27 ms batch."""
    clock = Clock()
    deadline = [0.050]
    limit = ConcurrencyLimit(
        target_latency_s=0.010,
        initial=100,
        clock=clock,
        service_time=lambda: 0.015,
        deadline=lambda: deadline[0],
    )
    assert limit.target_s == pytest.approx(DEADLINE_SHARE * 0.050)
    _window(limit, clock, 0.030, 100)  # under the uncapped 40 ms, over the capped 20 ms
    assert limit.limit < 100
    deadline[0] = 1.0  # a 1 s endpoint keeps the uncapped target
    assert limit.target_s == pytest.approx(0.040)
    shrunk = limit.limit
    _window(limit, clock, 0.030, shrunk)
    assert limit.limit > shrunk


def test_a_deadline_under_the_model_call_time_does_not_starve_the_endpoint() -> None:
    """When one call alone takes longer than the share of the deadline, that call is the
    floor: cutting the limit cannot make the model faster."""
    clock = Clock()
    limit = ConcurrencyLimit(
        target_latency_s=0.010,
        initial=10,
        clock=clock,
        service_time=lambda: 0.030,
        loop_lag=lambda: 0.002,
        deadline=lambda: 0.050,
    )
    assert limit.target_s == pytest.approx(0.032)
    _window(limit, clock, 0.031, 10)
    assert limit.limit == 11


def test_requests_shed_further_in_count_as_taking_the_whole_deadline() -> None:
    """Fast 503s from the batcher are congestion, not good latency, in proportion."""
    clock = Clock()
    limit = ConcurrencyLimit(
        target_latency_s=0.010, initial=100, clock=clock, deadline=lambda: 0.050
    )
    taken = sum(limit.acquire() for _ in range(100))
    for i in range(taken - 1):
        limit.release(0.0005, shed=i % 2 == 0)  # half shed: the mean is ~25 ms
    clock.now += 1.0
    limit.release(0.0005)
    assert limit.limit == 50  # cut in proportion: 10 ms target / ~25 ms, at most by half
    # One shed among many fast answers is not congestion: the used limit grows.
    taken = sum(limit.acquire() for _ in range(50))
    for i in range(taken - 1):
        limit.release(0.0005, shed=i == 0)
    clock.now += 1.0
    limit.release(0.0005)
    assert limit.limit > 50


def test_a_zero_target_admits_everything() -> None:
    limit = ConcurrencyLimit(target_latency_s=0.0, initial=1, minimum=1, clock=Clock())
    assert not limit.enabled
    assert all(limit.acquire() for _ in range(1000))


@given(st.lists(st.tuples(st.integers(0, 300), st.floats(0.0, 1.0)), max_size=60))
def test_the_limit_stays_within_its_bounds(windows: list[tuple[int, float]]) -> None:
    clock = Clock()
    limit = ConcurrencyLimit(target_latency_s=0.01, initial=64, minimum=2, maximum=256, clock=clock)
    for count, latency in windows:
        _window(limit, clock, latency, max(count, 1))
        assert 2 <= limit.limit <= 256
        assert limit.in_flight == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target_latency_s": -1.0},
        {"target_latency_s": float("nan")},
        {"window_s": 0.0},
        {"minimum": 0},
        {"minimum": 10, "maximum": 5},
    ],
)
def test_settings_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="need target_latency_s"):
        ConcurrencyLimit(**kwargs)  # type: ignore[arg-type]


def test_the_target_includes_the_loop_lag_which_no_limit_can_remove() -> None:
    clock = Clock()
    lag = LoopLag(clock=clock)
    for _ in range(50):
        lag.observe(0.020)
    assert lag.lag_s == pytest.approx(0.020, rel=1e-3)
    limit = ConcurrencyLimit(
        target_latency_s=0.010, initial=10, clock=clock, loop_lag=lambda: lag.lag_s
    )
    _window(limit, clock, 0.025, 10)  # 25 ms: all but 5 of it the loop's round
    assert limit.limit == 11


def test_loop_lag_measures_a_blocked_loop() -> None:
    async def scenario() -> float:
        lag = LoopLag(interval_s=0.002)
        await lag.start()
        await asyncio.sleep(0.01)
        time.sleep(0.05)  # hold the loop, as a flood of requests would
        for _ in range(100):  # bounded: the next tick sees it
            await asyncio.sleep(0.001)
            if lag.lag_s > 0.005:
                break
        await lag.close()
        return lag.lag_s

    assert asyncio.run(scenario()) > 0.005
