"""Power and sample size against statsmodels."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from statsmodels.stats.power import TTestIndPower
from statsmodels.stats.proportion import power_proportions_2indep

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats import (
    power_mean,
    power_proportion,
    sample_size_mean,
    sample_size_proportion,
)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.05, 1.5), st.integers(3, 5000), st.sampled_from([0.01, 0.05, 0.1]))
def test_mean_power_is_statsmodels_ttest_power(d: float, n: int, alpha: float) -> None:
    ref = TTestIndPower().power(effect_size=d, nobs1=n, alpha=alpha, ratio=1.0)
    assume(not math.isnan(ref))  # scipy's nct gives NaN in far tails; ours handles them
    assert power_mean(10.0, 2.0, 2.0 * d, n, alpha=alpha) == pytest.approx(ref, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.01, 0.9), st.floats(0.02, 0.5), st.integers(10, 100_000))
def test_proportion_power_is_statsmodels(p: float, rel: float, n: int) -> None:
    p2 = p * (1 + rel)
    if p2 >= 1:
        return
    ref = power_proportions_2indep(p2 - p, p, n, return_results=False)
    assert power_proportion(p, rel, n, relative=True) == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize(
    ("mean", "sd", "mde", "relative"), [(10.0, 4.0, 0.05, True), (0.0, 1.0, 0.2, False)]
)
def test_sample_size_mean_is_the_smallest_n_reaching_the_power(
    mean: float, sd: float, mde: float, relative: bool
) -> None:
    n = sample_size_mean(mean, sd, mde, relative=relative, power=0.8)
    d = (abs(mde * mean) if relative else mde) / sd
    ref = TTestIndPower().solve_power(effect_size=d, alpha=0.05, power=0.8, ratio=1.0)
    assert n == math.ceil(ref)
    assert power_mean(mean, sd, mde, n, relative=relative) >= 0.8
    assert power_mean(mean, sd, mde, n - 1, relative=relative) < 0.8


def test_mean_power_survives_scipys_far_tail_nan() -> None:
    # statsmodels (scipy's nct) answers NaN here; the far tail is negligible, power ~1.
    assert power_mean(10.0, 2.0, 2.0, 134, alpha=0.01) == pytest.approx(1.0, abs=1e-7)


def test_sample_size_proportion_is_the_smallest_n_reaching_the_power() -> None:
    n = sample_size_proportion(0.10, 0.10, relative=True, alpha=0.05, power=0.8)
    assert power_proportions_2indep(0.01, 0.10, n, return_results=False) >= 0.8
    assert power_proportions_2indep(0.01, 0.10, n - 1, return_results=False) < 0.8
    assert 14_000 < n < 15_500  # the textbook ~14,750 per arm for 10% -> 11%


@pytest.mark.parametrize(
    "call",
    [
        lambda: sample_size_proportion(0.0, 0.1),
        lambda: sample_size_proportion(0.95, 0.1),  # treatment proportion above 1
        lambda: sample_size_mean(1.0, 0.0, 0.1),
        lambda: sample_size_mean(1.0, 1.0, 0.0),
        lambda: sample_size_mean(1.0, 1.0, 0.1, power=0.01),
        lambda: power_mean(1.0, 1.0, 0.1, 1),
        lambda: power_proportion(0.5, 0.1, 100, alpha=1.5),
    ],
)
def test_bad_power_inputs(call: object) -> None:
    with pytest.raises(ExperimentInputError):
        call()  # type: ignore[operator]
