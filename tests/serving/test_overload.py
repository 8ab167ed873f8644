"""LoadShedder: the AIMD rule on the shed share, driven by lag values rather than a loop."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlgate.serving.overload import LoadShedder


def test_a_loop_that_keeps_up_sheds_nothing() -> None:
    shedder = LoadShedder(target_lag_s=0.015, rng=random.Random(1))
    for _ in range(100):
        shedder.observe(0.002)
    assert shedder.shed_share == 0.0
    assert all(shedder.admit() for _ in range(1000))


def test_one_late_tick_is_a_pause_not_overload() -> None:
    shedder = LoadShedder(target_lag_s=0.015, patience=3)
    for _ in range(10):
        shedder.observe(0.2)  # a GC pause
        shedder.observe(0.001)
        shedder.observe(0.05)
        shedder.observe(0.001)
    assert shedder.shed_share == 0.0
    for _ in range(3):
        shedder.observe(0.05)
    assert shedder.shed_share == pytest.approx(0.25)


def test_lag_over_target_cuts_admission_fast_and_reopens_slowly() -> None:
    shedder = LoadShedder(target_lag_s=0.015, patience=1)
    shedder.observe(0.05)
    assert shedder.shed_share == pytest.approx(0.25)
    shedder.observe(0.05)
    assert shedder.shed_share == pytest.approx(1 - 0.75**2)
    for _ in range(50):
        shedder.observe(0.05)
    assert shedder.shed_share == pytest.approx(0.95)  # never everything: keep measuring
    shedder.observe(0.001)
    assert shedder.shed_share == pytest.approx(0.94)
    for _ in range(200):
        shedder.observe(0.001)
    assert shedder.shed_share == 0.0


def test_admit_refuses_about_the_shed_share() -> None:
    shedder = LoadShedder(target_lag_s=0.015, patience=1, rng=random.Random(7))
    for _ in range(3):
        shedder.observe(1.0)
    share = shedder.shed_share
    refused = sum(not shedder.admit() for _ in range(20_000)) / 20_000
    assert refused == pytest.approx(share, abs=0.02)


@given(st.lists(st.floats(min_value=0.0, max_value=10.0), max_size=300))
def test_the_share_stays_a_probability_below_the_cap(lags: list[float]) -> None:
    shedder = LoadShedder(target_lag_s=0.015, patience=1)
    for lag in lags:
        shedder.observe(lag)
        assert 0.0 <= shedder.shed_share <= 0.95


def test_a_zero_target_turns_the_watch_off() -> None:
    async def scenario() -> None:
        shedder = LoadShedder(target_lag_s=0.0)
        await shedder.start()
        assert not shedder.enabled and shedder._task is None
        await shedder.close()

    asyncio.run(scenario())


def test_the_watch_measures_a_blocked_loop() -> None:
    async def scenario() -> None:
        shedder = LoadShedder(target_lag_s=0.01, interval_s=0.002, patience=1)
        await shedder.start()
        await asyncio.sleep(0.01)
        time.sleep(0.05)  # hold the loop, as a flood of requests would
        for _ in range(100):  # bounded: the next tick sees the lag
            await asyncio.sleep(0.002)
            if shedder.shed_share > 0:
                break
        assert shedder.shed_share > 0 and shedder.lag_s >= 0.01
        await shedder.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("lag", "interval", "patience", "message"),
    [
        (-1.0, 0.005, 3, "target_lag_s"),
        (0.01, 0.0, 3, "interval_s"),
        (float("nan"), 0.005, 3, "target_lag_s"),
        (0.01, 0.005, 0, "patience"),
    ],
)
def test_settings_are_checked(lag: float, interval: float, patience: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoadShedder(target_lag_s=lag, interval_s=interval, patience=patience)
