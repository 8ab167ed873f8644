"""Bayesian summary of one treatment against the control: chance to beat, loss, credible intervals.

Two models, both with independent posteriors per variant:

- proportions: conversion rate ``p ~ Beta(1 + successes, 1 + n - successes)``, the uniform
  Beta(1, 1) prior;
- means and ratios (and CUPED-adjusted metrics): a flat prior and the normal approximation,
  so the posterior of a variant's mean is ``N(mean, se^2)``.

Reported, with "better" meaning a larger metric:

- ``chance_to_beat_control`` ``P(theta_t > theta_c)``: Beta closed form or quadrature
  (:mod:`._beta`); ``Phi(d / s)`` for the normal model, ``d = m_t - m_c``,
  ``s^2 = se_t^2 + se_c^2``.
- ``expected_loss`` ``E[max(theta_c - theta_t, 0)]``, what shipping the treatment costs on
  average in the worlds where it is worse (Stucchio 2015, "Bayesian A/B Testing at VWO"):
  quadrature for Beta, ``s phi(d/s) - d Phi(-d/s)`` for the normal model. Its relative
  counterpart ``E[max(theta_c - theta_t, 0) / |theta_c|]`` has no closed form.
- equal-tailed ``1 - alpha`` credible intervals of ``theta_t - theta_c`` (closed form for the
  normal model) and ``(theta_t - theta_c) / |theta_c|``.

Whatever has no closed form comes from :data:`DEFAULT_DRAWS` posterior draws of a
``numpy.random.default_rng(seed)`` generator, so the same input always gives the same
output; the quantiles' Monte Carlo error is about 0.3% of the posterior sd. Under the normal
model the relative lift is left undefined when the control's mean is within 3 standard
errors of 0 (see :mod:`._lift`): its posterior then straddles zero and the ratio has no
useful interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from mlgate.experiments.stats._beta import beta_chance_to_beat, beta_expected_loss
from mlgate.experiments.stats._fixed import require_spread
from mlgate.experiments.stats._lift import Estimate, relative_lift, relative_undefined_reason
from mlgate.experiments.stats._summaries import Moments, ProportionSummary

__all__ = [
    "DEFAULT_DRAWS",
    "BayesianSummary",
    "beta_binomial_summary",
    "normal_summary",
]

DEFAULT_DRAWS = 200_000
PRIOR = (1.0, 1.0)
"""Beta(1, 1), the uniform prior on a conversion rate."""

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BayesianSummary:
    """Posterior answers for one treatment; ``relative*`` are None where undefined."""

    model: Literal["beta_binomial", "normal"]
    chance_to_beat_control: float
    expected_loss: float
    expected_loss_relative: float | None
    absolute: Estimate
    relative: Estimate | None
    relative_reason: str | None
    draws: int
    seed: int


def _interval(samples: FloatArray, estimate: float, alpha: float) -> Estimate:
    low, high = np.quantile(samples, [alpha / 2.0, 1.0 - alpha / 2.0])
    return Estimate(estimate, float(low), float(high))


def _relative_draws(
    treatment: FloatArray, control: FloatArray, estimate: float, alpha: float
) -> tuple[Estimate, float]:
    lift = (treatment - control) / np.abs(control)
    loss = float(np.mean(np.maximum(-lift, 0.0)))
    return _interval(lift, estimate, alpha), loss


def beta_binomial_summary(
    control: ProportionSummary,
    treatment: ProportionSummary,
    *,
    alpha: float = 0.05,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> BayesianSummary:
    """Beta(1, 1)-prior posteriors of two conversion rates, compared.

    The intervals are centred on nothing: ``estimate`` is the observed lift, which with a
    handful of units the prior may pull outside the credible interval.
    """
    a0, b0 = PRIOR
    ac, bc = a0 + control.successes, b0 + control.n - control.successes
    at, bt = a0 + treatment.successes, b0 + treatment.n - treatment.successes
    chance = beta_chance_to_beat(at, bt, ac, bc)
    loss = beta_expected_loss(at, bt, ac, bc)
    rng = np.random.default_rng(seed)
    pc = rng.beta(ac, bc, size=draws)
    pt = rng.beta(at, bt, size=draws)
    mc, mt = control.moments(), treatment.moments()
    diff = mt.mean - mc.mean
    absolute = _interval(pt - pc, diff, alpha)
    lift = relative_lift(mc.mean, mt.mean) if mc.mean > 0 else math.nan
    relative, relative_loss = _relative_draws(pt, pc, lift, alpha)
    return BayesianSummary(
        "beta_binomial", chance, loss, relative_loss, absolute, relative, None, draws, seed
    )


def normal_summary(
    control: Moments,
    treatment: Moments,
    *,
    alpha: float = 0.05,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> BayesianSummary:
    """Flat-prior normal posteriors of two means (or ratios), compared."""
    require_spread(control, treatment)
    diff = treatment.mean - control.mean
    s = math.sqrt(control.variance + treatment.variance)
    z = diff / s
    chance = float(stats.norm.cdf(z))
    loss = float(s * stats.norm.pdf(z) - diff * stats.norm.cdf(-z))
    half = float(stats.norm.isf(alpha / 2.0)) * s
    absolute = Estimate(diff, diff - half, diff + half)
    reason = relative_undefined_reason(control)
    relative, relative_loss = None, None
    if reason is None:
        rng = np.random.default_rng(seed)
        mu_c = rng.normal(control.mean, math.sqrt(control.variance), size=draws)
        mu_t = rng.normal(treatment.mean, math.sqrt(treatment.variance), size=draws)
        lift = relative_lift(control.mean, treatment.mean)
        relative, relative_loss = _relative_draws(mu_t, mu_c, lift, alpha)
    return BayesianSummary(
        "normal", chance, max(loss, 0.0), relative_loss, absolute, relative, reason, draws, seed
    )
