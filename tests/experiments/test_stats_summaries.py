"""Summaries: validation of every field, and moments against numpy.

Also home of the helpers the other ``test_stats_*`` modules share (summaries from raw
samples, Hypothesis strategies).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats import (
    CovariateSummary,
    MeanSummary,
    ProportionSummary,
    RatioSummary,
)


def mean_of(values: np.ndarray) -> MeanSummary:
    x = np.asarray(values, dtype=np.float64)
    return MeanSummary(int(x.size), float(x.sum()), float(np.dot(x, x)))


def proportion_of(values: np.ndarray) -> ProportionSummary:
    x = np.asarray(values)
    return ProportionSummary(int(x.size), int(x.sum()))


def mean_from_moments(n: int, mean: float, sd: float) -> MeanSummary:
    return MeanSummary(n, n * mean, (n - 1) * sd * sd + n * mean * mean)


means = st.builds(
    mean_from_moments,
    st.integers(2, 20_000),
    st.floats(-100.0, 100.0),
    st.floats(0.01, 100.0),
)
proportions = st.integers(2, 50_000).flatmap(
    lambda n: st.builds(ProportionSummary, st.just(n), st.integers(0, n))
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=200))
def test_mean_moments_match_numpy(values: list[float]) -> None:
    x = np.asarray(values)
    m = mean_of(x).moments()
    assert m.n == x.size
    assert m.mean == pytest.approx(x.mean(), abs=1e-9)
    assert m.unit_variance == pytest.approx(x.var(ddof=1), rel=1e-6, abs=1e-6)
    assert m.variance == pytest.approx(m.unit_variance / x.size)


def test_proportion_moments_are_bernoulli() -> None:
    m = ProportionSummary(200, 30).moments()
    assert (m.mean, m.unit_variance) == (0.15, pytest.approx(0.15 * 0.85))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MeanSummary(-1, 0.0, 0.0), "cannot be negative"),
        (lambda: MeanSummary(2.5, 1.0, 1.0), "whole number"),  # type: ignore[arg-type]
        (lambda: MeanSummary(True, 1.0, 1.0), "must be a number"),  # type: ignore[arg-type]
        (lambda: MeanSummary(10, False, 1.0), "must be a number"),  # type: ignore[arg-type]
        (lambda: MeanSummary(10, "5", 1.0), "must be a number"),  # type: ignore[arg-type]
        (lambda: MeanSummary(10, math.nan, 1.0), "finite"),
        (lambda: MeanSummary(10, 1.0, math.inf), "finite"),
        (lambda: MeanSummary(10, 100.0, 50.0), "variance negative"),
        (lambda: MeanSummary(0, 1.0, 1.0), "n is 0 but the sums are not"),
        (lambda: ProportionSummary(10, 11), "cannot exceed n"),
        (lambda: ProportionSummary(10, -1), "cannot be negative"),
        (lambda: RatioSummary(10, 10.0, 20.0, 10.0, 20.0, 1e6), "cross product"),
        (lambda: CovariateSummary(1.0, math.nan, 0.0), "covariate.sum_squares"),
    ],
)
def test_bad_summaries_say_what_to_send(build: object, message: str) -> None:
    with pytest.raises(ExperimentInputError, match=message):
        build()  # type: ignore[operator]


def test_rounding_in_sum_squares_is_not_an_error() -> None:
    # A constant 0.1 over 3 units: sum_squares falls short of sum**2/n by rounding only.
    s = MeanSummary(3, 0.1 + 0.1 + 0.1, 0.01 + 0.01 + 0.01)
    assert s.moments().unit_variance == pytest.approx(0.0, abs=1e-15)


def test_whole_floats_are_counts() -> None:
    assert MeanSummary(3407.0, 1.0, 1.0).n == 3407  # type: ignore[arg-type]
    assert isinstance(ProportionSummary(10.0, 3.0).successes, int)  # type: ignore[arg-type]


def test_too_few_units_give_nan_moments_not_errors() -> None:
    assert math.isnan(MeanSummary(1, 2.0, 4.0).moments().unit_variance)
    assert math.isnan(MeanSummary(0, 0.0, 0.0).moments().mean)
    assert math.isnan(RatioSummary(5, 1.0, 1.0, 0.0, 0.0, 0.0).moments().mean)
