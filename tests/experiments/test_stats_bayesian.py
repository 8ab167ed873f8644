"""Bayesian summaries: closed forms and quadrature against scipy.integrate and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy import stats as sps

from mlgate.experiments.stats import (
    Moments,
    ProportionSummary,
    beta_binomial_summary,
    beta_chance_to_beat,
    beta_expected_loss,
    normal_summary,
)


def quad_chance(ax: float, bx: float, ay: float, by: float) -> float:
    """P(X > Y) by adaptive quadrature over the narrower density, split at its median."""
    if sps.beta.std(ax, bx) < sps.beta.std(ay, by):
        return 1.0 - quad_chance(ay, by, ax, bx)
    lo, hi = sps.beta.ppf([1e-14, 1 - 1e-14], ay, by)
    value, _ = integrate.quad(
        lambda y: sps.beta.pdf(y, ay, by) * sps.beta.sf(y, ax, bx),
        lo, hi, points=[float(sps.beta.median(ay, by))], limit=500, epsabs=1e-13,
    )  # fmt: skip
    return float(value)


def mc(ax: float, bx: float, ay: float, by: float, n: int = 2_000_000) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    x, y = rng.beta(ax, bx, n), rng.beta(ay, by, n)
    return float(np.mean(x > y)), float(np.mean(np.maximum(y - x, 0.0)))


counts = st.integers(0, 400).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))


@settings(max_examples=60, deadline=None)
@given(counts, counts)
def test_closed_form_chance_matches_scipy_integrate(c: tuple[int, int], t: tuple[int, int]) -> None:
    (nc, sc), (nt, st_) = c, t
    ax, bx, ay, by = 1 + st_, 1 + nt - st_, 1 + sc, 1 + nc - sc
    assert beta_chance_to_beat(ax, bx, ay, by) == pytest.approx(
        quad_chance(ax, bx, ay, by), abs=1e-8
    )


@pytest.mark.parametrize(
    "params",
    [
        (1, 3, 3, 1),
        (31, 971, 45, 957),
        (2_001, 98_001, 2_101, 97_901),
        (12, 90, 1_500, 8_500),
        (1, 8, 96_656, 712_498),  # a wide posterior against a very narrow one
    ],
)
def test_quadrature_branch_matches_the_closed_form_and_integrate(params: tuple[int, ...]) -> None:
    ax, bx, ay, by = (float(p) for p in params)
    closed = beta_chance_to_beat(ax, bx, ay, by)
    quadrature = beta_chance_to_beat(ax, bx, ay, by, max_terms=0)
    assert quadrature == pytest.approx(closed, abs=1e-9)
    assert closed == pytest.approx(quad_chance(ax, bx, ay, by), abs=1e-8)


@pytest.mark.parametrize(
    "params", [(1, 3, 3, 1), (31, 971, 45, 957), (12, 90, 1_500, 8_500), (1_500, 8_500, 12, 90)]
)
def test_chance_and_loss_match_monte_carlo(params: tuple[int, ...]) -> None:
    ax, bx, ay, by = params
    chance, loss = mc(ax, bx, ay, by)
    assert beta_chance_to_beat(ax, bx, ay, by) == pytest.approx(chance, abs=2e-3)
    assert beta_expected_loss(ax, bx, ay, by) == pytest.approx(loss, rel=1e-2, abs=1e-6)


def test_expected_loss_matches_a_double_integral() -> None:
    ax, bx, ay, by = 5.0, 20.0, 7.0, 18.0
    # Over the region y > x, where the integrand is smooth (no kink for quad to chase).
    value, _ = integrate.dblquad(
        lambda y, x: (y - x) * sps.beta.pdf(x, ax, bx) * sps.beta.pdf(y, ay, by),
        0.0, 1.0, lambda x: x, 1.0, epsabs=1e-11,
    )  # fmt: skip
    assert beta_expected_loss(ax, bx, ay, by) == pytest.approx(value, rel=1e-6)


def test_beta_binomial_summary_is_deterministic_and_coherent() -> None:
    c, t = ProportionSummary(1000, 100), ProportionSummary(1000, 130)
    a = beta_binomial_summary(c, t, seed=5)
    b = beta_binomial_summary(c, t, seed=5)
    assert a == b
    assert a.chance_to_beat_control == pytest.approx(quad_chance(131, 871, 101, 901), abs=1e-8)
    assert 0.0 < a.absolute.low < 0.03 < a.absolute.high
    assert a.relative is not None and 0.0 < a.relative.low < 0.3 < a.relative.high
    # Treatment clearly better: losing is unlikely and cheap.
    assert a.chance_to_beat_control > 0.97 and a.expected_loss < 1e-3


@settings(max_examples=30, deadline=None)
@given(st.floats(-5, 5), st.floats(0.1, 3), st.floats(0.1, 3))
def test_normal_closed_forms_match_monte_carlo(d: float, sc: float, st_: float) -> None:
    c, t = Moments(100, 20.0, sc**2 * 100), Moments(100, 20.0 + d, st_**2 * 100)
    s = normal_summary(c, t, alpha=0.1, draws=50_000, seed=3)
    rng = np.random.default_rng(9)
    diff = rng.normal(20.0 + d, st_, 400_000) - rng.normal(20.0, sc, 400_000)
    sd = math.hypot(sc, st_)
    assert s.chance_to_beat_control == pytest.approx(np.mean(diff > 0), abs=4e-3)
    assert s.expected_loss == pytest.approx(np.mean(np.maximum(-diff, 0)), abs=8e-3 * sd)
    low, high = np.quantile(diff, [0.05, 0.95])
    assert s.absolute.low == pytest.approx(low, abs=0.02 * sd)
    assert s.absolute.high == pytest.approx(high, abs=0.02 * sd)


def test_normal_relative_interval_is_undefined_when_the_control_straddles_zero() -> None:
    s = normal_summary(Moments(10, 0.1, 1.0), Moments(10, 1.0, 1.0))
    assert s.relative is None and s.relative_reason is not None
    assert s.expected_loss_relative is None
