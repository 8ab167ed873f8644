"""The mSPRT: its formulas against direct integration, and its guarantee under peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy import stats as sps

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats import (
    DEFAULT_MIXING_SD,
    MeanSummary,
    Moments,
    confidence_radius,
    mixture_likelihood_ratio,
    msprt,
    welch_t_test,
)
from tests.experiments.test_stats_summaries import mean_of, means


@settings(max_examples=40, deadline=None)
@given(st.floats(-3.0, 3.0), st.floats(0.05, 2.0), st.floats(0.05, 2.0))
def test_likelihood_ratio_is_the_normal_mixture_integral(
    z: float, variance: float, tau2: float
) -> None:
    diff = z * math.sqrt(variance)
    sd = math.sqrt(variance)

    def joint(delta: float) -> float:
        return float(sps.norm.pdf(diff, delta, sd) * sps.norm.pdf(delta, 0.0, math.sqrt(tau2)))

    mixture, _ = integrate.quad(joint, -np.inf, np.inf, epsabs=1e-13)
    expected = mixture / sps.norm.pdf(diff, 0.0, sd)
    assert mixture_likelihood_ratio(diff, variance, tau2) == pytest.approx(expected, rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.floats(1e-6, 10.0), st.floats(1e-6, 10.0), st.floats(0.001, 0.3))
def test_sequence_edge_is_where_the_ratio_reaches_one_over_alpha(
    variance: float, tau2: float, alpha: float
) -> None:
    r = confidence_radius(variance, tau2, alpha)
    assert mixture_likelihood_ratio(r, variance, tau2) == pytest.approx(1.0 / alpha, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(means, means, st.floats(0.001, 0.3), st.floats(0.01, 1.0))
def test_sequential_properties(c: MeanSummary, t: MeanSummary, alpha: float, phi: float) -> None:
    ab = msprt(c.moments(), t.moments(), alpha=alpha, mixing_sd=phi)
    ba = msprt(t.moments(), c.moments(), alpha=alpha, mixing_sd=phi)
    assert 0.0 <= ab.p_value <= 1.0
    assert ab.absolute.low <= ab.absolute.estimate <= ab.absolute.high
    assert ab.p_value == pytest.approx(ba.p_value, rel=1e-9)
    assert ab.absolute.low == pytest.approx(-ba.absolute.high, rel=1e-9, abs=1e-12)
    # The sequence excludes 0 exactly when the always-valid p-value is at most alpha.
    if abs(ab.p_value - alpha) > 1e-9:
        assert (not ab.absolute.low <= 0.0 <= ab.absolute.high) == (ab.p_value <= alpha)
    # Always wider than the fixed z-interval: 2 log(1/alpha) > z_{1-alpha/2}^2.
    z = sps.norm.isf(alpha / 2) * math.sqrt(c.moments().variance + t.moments().variance)
    assert ab.absolute.high - ab.absolute.estimate > z


def test_p_value_is_one_without_a_difference_and_falls_as_it_grows() -> None:
    c = Moments(1000, 10.0, 4.0)
    ps = [msprt(c, Moments(1000, 10.0 + d, 4.0)).p_value for d in (0.0, 0.1, 0.2, 0.4)]
    assert ps[0] == 1.0
    assert ps == sorted(ps, reverse=True) and ps[-1] < 0.05


def test_sequence_is_wider_than_the_fixed_interval_and_holds_the_estimate() -> None:
    c, t = Moments(5000, 10.0, 4.0), Moments(5000, 10.1, 4.2)
    seq, fixed = msprt(c, t), welch_t_test(c, t)
    assert seq.absolute.low < fixed.absolute.low < seq.absolute.estimate < fixed.absolute.high
    assert fixed.absolute.high < seq.absolute.high
    assert seq.p_value >= fixed.p_value
    assert seq.relative is not None
    assert seq.relative.estimate == pytest.approx(0.01)
    assert seq.relative.low < 0.01 < seq.relative.high
    # The mixing variance is set in standardised units: mixing_sd^2 * mean unit variance.
    assert seq.mixing_variance == pytest.approx(DEFAULT_MIXING_SD**2 * 4.1)


def test_mixing_sd_must_be_positive() -> None:
    with pytest.raises(ExperimentInputError, match="mixing_sd"):
        msprt(Moments(10, 1.0, 1.0), Moments(10, 1.0, 1.0), mixing_sd=0.0)


def _peeking(
    effect: float, *, experiments: int, looks: int, batch: int, seed: int
) -> tuple[float, float, float]:
    """Share of experiments where (sequential, fixed peeked, fixed final) ever reject."""
    rng = np.random.default_rng(seed)
    alpha = 0.05
    seq = peek = final = 0
    for _ in range(experiments):
        c = rng.normal(0.0, 1.0, looks * batch)
        t = rng.normal(effect, 1.0, looks * batch)
        s_hit = f_hit = False
        for k in range(1, looks + 1):
            mc, mt = mean_of(c[: k * batch]).moments(), mean_of(t[: k * batch]).moments()
            s_hit |= msprt(mc, mt, alpha=alpha).p_value <= alpha
            fixed_p = welch_t_test(mc, mt, alpha=alpha).p_value
            f_hit |= fixed_p <= alpha
        seq += s_hit
        peek += f_hit
        final += fixed_p <= alpha
    return seq / experiments, peek / experiments, final / experiments


def test_always_valid_under_peeking_in_an_aa_simulation() -> None:
    n, alpha = 300, 0.05
    seq, peek, _ = _peeking(0.0, experiments=n, looks=10, batch=100, seed=20240601)
    margin = 3.0 * math.sqrt(alpha * (1 - alpha) / n)
    assert seq <= alpha + margin
    # The same data, peeked at with the fixed-horizon test, reject far more often: the
    # simulation is able to show the inflation the sequential test prevents.
    assert peek > 0.10


def test_sequence_covers_a_true_effect_at_every_look() -> None:
    rng = np.random.default_rng(11)
    effect, misses, runs = 0.2, 0, 200
    for _ in range(runs):
        c, t = rng.normal(0.0, 1.0, 2000), rng.normal(effect, 1.0, 2000)
        for k in range(200, 2001, 200):
            ci = msprt(mean_of(c[:k]).moments(), mean_of(t[:k]).moments()).absolute
            if not ci.low <= effect <= ci.high:
                misses += 1
                break
    assert misses / runs <= 0.05 + 3.0 * math.sqrt(0.05 * 0.95 / runs)
