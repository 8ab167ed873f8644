"""Fixed-horizon tests against scipy and statsmodels, and their properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats import proportion as smp
from statsmodels.stats import weightstats as smw

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats import (
    MeanSummary,
    Moments,
    ProportionSummary,
    RatioSummary,
    two_proportion_z_test,
    welch_t_test,
    z_test,
)
from tests.experiments.test_stats_summaries import mean_from_moments, mean_of, means, proportions


def test_welch_matches_scipy_and_statsmodels_on_raw_data() -> None:
    rng = np.random.default_rng(7)
    for _ in range(25):
        nc, nt = rng.integers(2, 400, size=2)
        xc = rng.normal(10, rng.uniform(0.5, 5), nc)
        xt = rng.normal(10.5, rng.uniform(0.5, 5), nt)
        ours = welch_t_test(mean_of(xc).moments(), mean_of(xt).moments(), alpha=0.1)
        ref = sps.ttest_ind(xt, xc, equal_var=False)
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-14)
        assert ours.statistic == pytest.approx(ref.statistic, rel=1e-8)
        cm = smw.CompareMeans(smw.DescrStatsW(xt), smw.DescrStatsW(xc))
        low, high = cm.tconfint_diff(alpha=0.1, usevar="unequal")
        assert (ours.absolute.low, ours.absolute.high) == pytest.approx((low, high), rel=1e-8)


@settings(max_examples=150, deadline=None)
@given(means, means)
def test_welch_matches_ttest_ind_from_stats(c: MeanSummary, t: MeanSummary) -> None:
    mc, mt = c.moments(), t.moments()
    ref = sps.ttest_ind_from_stats(
        mt.mean, math.sqrt(mt.unit_variance), mt.n, mc.mean, math.sqrt(mc.unit_variance), mc.n,
        equal_var=False,
    )  # fmt: skip
    ours = welch_t_test(mc, mt)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(proportions, proportions)
def test_two_proportion_z_matches_statsmodels(c: ProportionSummary, t: ProportionSummary) -> None:
    pooled = (c.successes + t.successes) / (c.n + t.n)
    assume(0 < pooled < 1)
    assume(c.moments().variance + t.moments().variance > 0)
    ours = two_proportion_z_test(c, t, alpha=0.05)
    _, p = smp.proportions_ztest([t.successes, c.successes], [t.n, c.n])
    assert ours.p_value == pytest.approx(p, rel=1e-7, abs=1e-12)
    low, high = smp.confint_proportions_2indep(
        t.successes, t.n, c.successes, c.n, method="wald", compare="diff", alpha=0.05
    )
    assert ours.absolute.low == pytest.approx(low, abs=1e-12)
    assert ours.absolute.high == pytest.approx(high, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(means, means, st.floats(0.001, 0.5))
def test_interval_contains_estimate_and_p_in_unit_range(
    c: MeanSummary, t: MeanSummary, alpha: float
) -> None:
    r = welch_t_test(c.moments(), t.moments(), alpha=alpha)
    assert 0.0 <= r.p_value <= 1.0
    assert r.absolute.low <= r.absolute.estimate <= r.absolute.high
    # The absolute interval excludes 0 exactly when p < alpha (same statistic, same df).
    excludes = not (r.absolute.low <= 0.0 <= r.absolute.high)
    if abs(r.p_value - alpha) > 1e-9:
        assert excludes == (r.p_value < alpha)
    if r.relative is not None:
        assert r.relative.low <= r.relative.estimate <= r.relative.high


@settings(max_examples=100, deadline=None)
@given(means, means)
def test_swapping_arms_negates_the_lift_and_keeps_the_p_value(
    c: MeanSummary, t: MeanSummary
) -> None:
    ab = welch_t_test(c.moments(), t.moments())
    ba = welch_t_test(t.moments(), c.moments())
    assert ab.p_value == pytest.approx(ba.p_value, rel=1e-9, abs=1e-15)
    assert ab.absolute.estimate == pytest.approx(-ba.absolute.estimate, rel=1e-9, abs=1e-12)
    assert ab.absolute.low == pytest.approx(-ba.absolute.high, rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(means, means, st.floats(1e-3, 1e3))
def test_relative_lift_is_invariant_to_the_metric_unit(
    c: MeanSummary, t: MeanSummary, scale: float
) -> None:
    def scaled(s: MeanSummary) -> MeanSummary:
        return MeanSummary(s.n, s.sum * scale, s.sum_squares * scale * scale)

    a = welch_t_test(c.moments(), t.moments())
    b = welch_t_test(scaled(c).moments(), scaled(t).moments())
    assert a.p_value == pytest.approx(b.p_value, rel=1e-6, abs=1e-12)
    assert (a.relative is None) == (b.relative is None)
    if a.relative is not None and b.relative is not None:
        assert b.relative.estimate == pytest.approx(a.relative.estimate, rel=1e-7, abs=1e-12)
        assert b.relative.low == pytest.approx(a.relative.low, rel=1e-6, abs=1e-10)


def test_relative_interval_is_the_delta_method() -> None:
    c, t = mean_from_moments(1000, 10.0, 3.0), mean_from_moments(1200, 10.6, 3.5)
    r = welch_t_test(c.moments(), t.moments(), alpha=0.05)
    assert r.relative is not None
    var = (3.5**2 / 1200) / 10.0**2 + 10.6**2 * (3.0**2 / 1000) / 10.0**4
    crit = sps.t.isf(0.025, r.df)
    assert r.relative.estimate == pytest.approx(0.06)
    assert r.relative.high - r.relative.estimate == pytest.approx(crit * math.sqrt(var))


def test_relative_lift_is_undefined_near_a_zero_control_mean() -> None:
    c, t = mean_from_moments(100, 0.0, 1.0), mean_from_moments(100, 1.0, 1.0)
    r = welch_t_test(c.moments(), t.moments())
    assert r.relative is None and r.relative_reason is not None
    assert "absolute" in r.relative_reason
    noisy = welch_t_test(mean_from_moments(100, 0.2, 1.0).moments(), t.moments())
    assert noisy.relative is None and "standard errors" in (noisy.relative_reason or "")


def test_ratio_delta_method_matches_the_linearised_raw_values() -> None:
    rng = np.random.default_rng(3)
    arms = []
    for rate in (2.0, 2.2):
        sessions = rng.poisson(5, 3000) + 1
        clicks = rng.poisson(rate * sessions)
        x, y = clicks.astype(float), sessions.astype(float)
        s = RatioSummary(x.size, x.sum(), x @ x, y.sum(), y @ y, x @ y)
        m = s.moments()
        ratio = x.sum() / y.sum()
        linear = (x - ratio * y) / y.mean()  # Deng et al. 2018's linearisation
        assert m.mean == pytest.approx(ratio)
        assert m.unit_variance == pytest.approx(linear.var(ddof=1), rel=1e-9)
        arms.append(m)
    r = z_test(arms[0], arms[1])
    assert r.test == "z" and math.isinf(r.df)
    assert r.p_value < 1e-6  # a 10% rise in clicks per session over 3,000 users


def test_zero_variance_and_too_few_units_are_refused_with_advice() -> None:
    constant = Moments(50, 1.0, 0.0)
    with pytest.raises(ExperimentInputError, match="both variants are constant"):
        welch_t_test(constant, constant)
    with pytest.raises(ExperimentInputError, match="at least 2"):
        welch_t_test(Moments(1, 1.0, math.nan), Moments(10, 1.0, 1.0))
    # One constant arm is fine: Welch's test rests on the other arm's variance.
    one = welch_t_test(constant, Moments(50, 1.2, 0.25))
    assert 0.0 < one.p_value < 0.05
