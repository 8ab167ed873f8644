"""McNemar against scipy and statsmodels; the paired bootstrap's properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from mlgate.loop.gates import Predictions
from mlgate.loop.gates._metrics import MetricUndefinedError, Scored, label_universe, prepare
from mlgate.loop.gates._stats import mcnemar_one_sided, paired_bootstrap


def _paired(wins: int, losses: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    cand = np.array([True] * wins + [False] * losses + [True] * both + [False] * neither)
    champ = np.array([False] * wins + [True] * losses + [True] * both + [False] * neither)
    return cand, champ


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60), st.integers(0, 30), st.integers(0, 30))
def test_mcnemar_matches_scipy_binomtest_and_statsmodels(
    wins: int, losses: int, both: int, neither: int
) -> None:
    result = mcnemar_one_sided(*_paired(wins, losses, both, neither))
    assert (result.candidate_wins, result.champion_wins) == (wins, losses)
    n = wins + losses
    if n == 0:
        assert result.p_value == 1.0
        return
    one_sided = sps.binomtest(wins, n, 0.5, alternative="greater").pvalue
    assert result.p_value == pytest.approx(one_sided, rel=1e-12)
    # statsmodels' exact McNemar is two-sided: 2 * P(X <= min(b, c)), capped at 1. When the
    # candidate wins more often, the one-sided p-value is exactly half of it.
    table = [[both, wins], [losses, neither]]
    two_sided = sm_mcnemar(table, exact=True).pvalue
    if wins > losses:
        assert result.p_value == pytest.approx(two_sided / 2, rel=1e-10)
    else:
        assert result.p_value >= 0.5


def test_mcnemar_known_value() -> None:
    # 10 discordant rows, all won by the candidate: p = 0.5 ** 10.
    result = mcnemar_one_sided(*_paired(10, 0, 50, 5))
    assert result.p_value == pytest.approx(0.5**10)


def _accuracy_pair(n: int, cand_acc: float, champ_acc: float, seed: int) -> tuple[Scored, Scored]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    cand = Predictions(np.where(rng.random(n) < cand_acc, y, 1 - y))
    champ = Predictions(np.where(rng.random(n) < champ_acc, y, 1 - y))
    universe = label_universe(y, cand, champ)
    return (
        prepare("accuracy", "classification", y, cand, universe),
        prepare("accuracy", "classification", y, champ, universe),
    )


def _boot(cand: Scored, champ: Scored, n: int, seed: int = 0, higher: bool = True):  # type: ignore[no-untyped-def]
    return paired_bootstrap(
        cand,
        champ,
        n_rows=n,
        higher_is_better=higher,
        n_resamples=1000,
        confidence=0.95,
        rng=np.random.default_rng(seed),
    )


def test_bootstrap_interval_excludes_zero_for_a_large_true_difference() -> None:
    cand, champ = _accuracy_pair(2000, 0.95, 0.75, seed=1)
    interval = _boot(cand, champ, 2000)
    assert interval.low > 0.1
    assert interval.low <= interval.observed <= interval.high
    assert interval.observed == pytest.approx(cand.value - champ.value)


def test_bootstrap_of_identical_predictions_is_exactly_zero() -> None:
    cand, _ = _accuracy_pair(500, 0.8, 0.8, seed=2)
    interval = _boot(cand, cand, 500)
    assert (interval.low, interval.high, interval.observed) == (0.0, 0.0, 0.0)


def test_bootstrap_interval_covers_zero_when_models_are_equally_good() -> None:
    cand, champ = _accuracy_pair(300, 0.8, 0.8, seed=3)
    interval = _boot(cand, champ, 300)
    assert interval.low < 0 < interval.high


def test_bootstrap_orients_losses_so_positive_means_candidate_better() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(size=400)
    better = prepare("rmse", "regression", y, Predictions(y + rng.normal(0, 0.1, 400)), None)
    worse = prepare("rmse", "regression", y, Predictions(y + rng.normal(0, 1.0, 400)), None)
    interval = _boot(better, worse, 400, higher=False)
    assert interval.low > 0
    assert interval.observed == pytest.approx(worse.value - better.value)


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 200), st.integers(0, 2**31), st.sampled_from([True, False]))
def test_bootstrap_swap_negates_and_seed_determines(n: int, seed: int, higher: bool) -> None:
    cand, champ = _accuracy_pair(n, 0.8, 0.7, seed)
    forward = _boot(cand, champ, n, seed=seed, higher=higher)
    backward = _boot(champ, cand, n, seed=seed, higher=higher)
    assert backward.observed == -forward.observed
    assert backward.low == pytest.approx(-forward.high, abs=1e-12)
    assert backward.high == pytest.approx(-forward.low, abs=1e-12)
    assert _boot(cand, champ, n, seed=seed, higher=higher) == forward


def test_bootstrap_counts_resamples_where_the_metric_is_undefined() -> None:
    y = np.array([0] * 39 + [1])  # one positive: most resamples lack it
    proba = np.column_stack([np.linspace(0.9, 0.1, 40), np.linspace(0.1, 0.9, 40)])
    pred = Predictions(y, proba, np.array([0, 1]))
    scored = prepare("roc_auc", "classification", y, pred, None)
    interval = _boot(scored, scored, 40)
    assert interval.n_undefined > 100
    assert (interval.low, interval.high) == (0.0, 0.0)


def test_bootstrap_with_no_defined_resample_is_undefined() -> None:
    nan = Scored(0.5, lambda idx: np.full(len(idx), np.nan))
    with pytest.raises(MetricUndefinedError, match="all 1000 bootstrap resamples"):
        _boot(nan, nan, 10)
