"""Power and sample size for a two-arm, equal-split, two-sided fixed-horizon test.

- Means: Welch's t-test with equal variances and arms is Student's t, so power is the
  noncentral t's (``statsmodels.stats.power.TTestIndPower``): ``df = 2n - 2``,
  noncentrality ``d sqrt(n / 2)``, ``d = mde / sd``, counting both rejection tails.
- Proportions: the pooled z-test this package runs, with the pooled variance under the null
  and the unpooled one under the alternative (``statsmodels.stats.proportion.
  power_proportions_2indep``)::

      power = Phi((|delta| sqrt(n) - z s0) / s1) + Phi((-|delta| sqrt(n) - z s0) / s1)
      s0^2 = 2 pbar (1 - pbar),  s1^2 = p1 (1 - p1) + p2 (1 - p2),  z = z_{1 - alpha/2}

The minimum detectable effect is absolute, or relative to the baseline with
``relative=True`` (0.05 = "a 5% lift"). Sample sizes are per arm, rounded up: the smallest
``n`` whose power reaches the target. They are for the fixed-horizon test; the sequential
test needs more units for the same power (see :mod:`._sequential`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from scipy import optimize, stats

from mlgate.errors import ExperimentInputError

__all__ = ["power_mean", "power_proportion", "sample_size_mean", "sample_size_proportion"]

_MAX_N = 1e12


def _check_levels(alpha: float, power: float | None = None) -> None:
    if not 0.0 < alpha < 1.0:
        raise ExperimentInputError(f"alpha is {alpha!r}; give a level in (0, 1), e.g. 0.05")
    if power is not None and not alpha < power < 1.0:
        raise ExperimentInputError(f"power is {power!r}; give a target in (alpha, 1), e.g. 0.8")


def _effect(baseline: float, mde: float, relative: bool) -> float:
    if not (math.isfinite(mde) and mde != 0):
        raise ExperimentInputError(f"mde is {mde!r}; give a non-zero minimum detectable effect")
    if relative:
        if baseline == 0:
            raise ExperimentInputError("a relative mde needs a non-zero baseline; give it absolute")
        return abs(mde * baseline)
    return abs(mde)


def _mean_effect_size(mean: float, sd: float, mde: float, relative: bool) -> float:
    if not (math.isfinite(sd) and sd > 0):
        raise ExperimentInputError(f"sd is {sd!r}; give the metric's standard deviation (> 0)")
    if not math.isfinite(mean):
        raise ExperimentInputError(f"mean is {mean!r}; give a finite baseline mean")
    return _effect(mean, mde, relative) / sd


def _t_power(d: float, n: float, alpha: float) -> float:
    df = 2.0 * n - 2.0
    nc = abs(d) * math.sqrt(n / 2.0)
    crit = float(stats.t.isf(alpha / 2.0, df))
    near = float(stats.nct.sf(crit, df, nc))
    if math.isnan(near):
        near = 1.0 - float(stats.nct.cdf(crit, df, nc))
    # scipy's noncentral t returns NaN deep in the far tail (P(T < -crit) with a large
    # noncentrality). That tail is below the central t's alpha/2 and, where scipy fails,
    # below 1e-20: 0 is exact to double precision in the sum.
    far = float(stats.nct.cdf(-crit, df, nc))
    far = 0.0 if math.isnan(far) else min(max(far, 0.0), alpha / 2.0)
    return min(1.0, near + far)


def _proportions(p: float, mde: float, relative: bool) -> tuple[float, float]:
    if not 0.0 < p < 1.0:
        raise ExperimentInputError(f"baseline proportion is {p!r}; give one in (0, 1)")
    delta = _effect(p, mde, relative) * (1.0 if mde > 0 else -1.0)
    p2 = p + delta
    if not 0.0 < p2 < 1.0:
        raise ExperimentInputError(
            f"baseline {p!r} with this mde gives a treatment proportion of {p2!r}, outside (0, 1)"
        )
    return p, p2


def _z_power(p1: float, p2: float, n: float, alpha: float) -> float:
    pbar = 0.5 * (p1 + p2)
    sigma0 = math.sqrt(2.0 * pbar * (1.0 - pbar))
    sigma1 = math.sqrt(p1 * (1.0 - p1) + p2 * (1.0 - p2))
    z = stats.norm.isf(alpha / 2.0)
    shift = abs(p2 - p1) * math.sqrt(n)
    return float(
        stats.norm.cdf((shift - z * sigma0) / sigma1)
        + stats.norm.cdf((-shift - z * sigma0) / sigma1)
    )


def _smallest_n(power_at: Callable[[float], float], target: float, low: float) -> int:
    if power_at(_MAX_N) < target:
        raise ExperimentInputError("the effect is too small to detect with any practical sample")
    if power_at(low) >= target:
        return math.ceil(low)
    exact: float = optimize.brentq(
        lambda n: power_at(n) - target, low, _MAX_N, xtol=1e-6, rtol=1e-12
    )
    n = math.ceil(exact - 1e-6)
    # brentq's root is within tolerance; step so that n is the smallest whole n that reaches it.
    while power_at(n) < target:
        n += 1
    while n - 1 >= low and power_at(n - 1) >= target:
        n -= 1
    return n


def power_mean(
    mean: float,
    sd: float,
    mde: float,
    n_per_arm: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
) -> float:
    """Power of the two-sided t-test with ``n_per_arm`` units in each of two arms."""
    _check_levels(alpha)
    if n_per_arm < 2:
        raise ExperimentInputError(f"n_per_arm is {n_per_arm!r}; a t-test needs at least 2 per arm")
    return _t_power(_mean_effect_size(mean, sd, mde, relative), n_per_arm, alpha)


def sample_size_mean(
    mean: float,
    sd: float,
    mde: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    """Units per arm for the t-test to reach ``power`` at effect ``mde``."""
    _check_levels(alpha, power)
    d = _mean_effect_size(mean, sd, mde, relative)
    return _smallest_n(lambda n: _t_power(d, n, alpha), power, 2.0)


def power_proportion(
    p: float, mde: float, n_per_arm: float, *, relative: bool = False, alpha: float = 0.05
) -> float:
    """Power of the two-sided pooled z-test with ``n_per_arm`` units in each of two arms."""
    _check_levels(alpha)
    if n_per_arm < 1:
        raise ExperimentInputError(f"n_per_arm is {n_per_arm!r}; give at least 1 per arm")
    p1, p2 = _proportions(p, mde, relative)
    return _z_power(p1, p2, n_per_arm, alpha)


def sample_size_proportion(
    p: float, mde: float, *, relative: bool = False, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Units per arm for the pooled z-test to reach ``power`` from baseline ``p``."""
    _check_levels(alpha, power)
    p1, p2 = _proportions(p, mde, relative)
    return _smallest_n(lambda n: _z_power(p1, p2, n, alpha), power, 1.0)
