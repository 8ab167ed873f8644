"""CUPED from summaries against the same adjustment done on the raw rows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats import (
    CovariateSummary,
    MeanSummary,
    ProportionSummary,
    cuped,
    welch_t_test,
)
from tests.experiments.test_stats_summaries import mean_of


def _arm(rng: np.random.Generator, n: int, lift: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.gamma(2.0, 10.0, n)  # last month's spend
    y = 0.8 * x + rng.normal(5.0 + lift, 6.0, n)  # this month's
    return x, y


def _covariate(x: np.ndarray, y: np.ndarray) -> CovariateSummary:
    return CovariateSummary(float(x.sum()), float(x @ x), float(x @ y))


def test_cuped_matches_a_direct_computation_on_raw_data() -> None:
    rng = np.random.default_rng(42)
    (xc, yc), (xt, yt) = _arm(rng, 3000, 0.0), _arm(rng, 2800, 0.7)
    adj = cuped(
        {"control": mean_of(yc), "treatment": mean_of(yt)},
        {"control": _covariate(xc, yc), "treatment": _covariate(xt, yt)},
    )
    # Raw: theta from within-arm centred cross products, pooled; grand covariate mean.
    sxy = sum(((x - x.mean()) * (y - y.mean())).sum() for x, y in ((xc, yc), (xt, yt)))
    sxx = sum(((x - x.mean()) ** 2).sum() for x in (xc, xt))
    theta = sxy / sxx
    grand = np.concatenate([xc, xt]).mean()
    yc_adj, yt_adj = yc - theta * (xc - grand), yt - theta * (xt - grand)
    assert adj.theta == pytest.approx(theta, rel=1e-9)
    assert adj.covariate_mean == pytest.approx(grand, rel=1e-12)
    for name, raw in (("control", yc_adj), ("treatment", yt_adj)):
        assert adj.moments[name].mean == pytest.approx(raw.mean(), rel=1e-9)
        assert adj.moments[name].unit_variance == pytest.approx(raw.var(ddof=1), rel=1e-7)
    ours = welch_t_test(adj.moments["control"], adj.moments["treatment"])
    ref = sps.ttest_ind(yt_adj, yc_adj, equal_var=False)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    # And it earns its keep: the covariate explains most of the variance.
    plain = welch_t_test(mean_of(yc).moments(), mean_of(yt).moments())
    assert adj.variance_reduction > 0.5
    assert ours.absolute.high - ours.absolute.low < 0.7 * (plain.absolute.high - plain.absolute.low)


def test_cuped_on_a_proportion_uses_the_metric_as_its_own_square() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, 2000)
    y = (x + rng.normal(0, 1, 2000) > 0.5).astype(float)
    half = slice(0, 1000), slice(1000, 2000)
    variants = {
        k: ProportionSummary(1000, int(y[s].sum())) for k, s in zip("ab", half, strict=True)
    }
    covs = {k: _covariate(x[s], y[s]) for k, s in zip("ab", half, strict=True)}
    adj = cuped(variants, covs)
    sxy = sum(((x[s] - x[s].mean()) * (y[s] - y[s].mean())).sum() for s in half)
    sxx = sum(((x[s] - x[s].mean()) ** 2).sum() for s in half)
    assert adj.theta == pytest.approx(sxy / sxx, rel=1e-9)


def test_a_constant_covariate_changes_nothing() -> None:
    y = np.arange(10.0)
    adj = cuped(
        {"a": mean_of(y), "b": mean_of(y + 1)},
        {"a": _covariate(np.ones(10), y), "b": _covariate(np.ones(10), y + 1)},
    )
    assert adj.theta == 0.0 and adj.variance_reduction == 0.0
    assert adj.moments["b"].mean == pytest.approx(5.5)


def test_covariates_must_cover_every_variant_and_be_consistent() -> None:
    s = MeanSummary(10, 10.0, 20.0)
    with pytest.raises(ExperimentInputError, match="every variant"):
        cuped({"a": s, "b": s}, {"a": CovariateSummary(1.0, 1.0, 1.0)})
    with pytest.raises(ExperimentInputError, match="cross product"):
        bad = CovariateSummary(10.0, 20.0, 1e6)
        cuped({"a": s, "b": s}, {"a": bad, "b": bad})
