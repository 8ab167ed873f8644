"""Always-valid inference: the mixture sequential probability ratio test (mSPRT).

Johari, Koomen, Pekelis & Walsh (2017), "Peeking at A/B Tests: Why it matters, and what to
do about it" (KDD), with the normal-mixture boundary of Howard, Ramdas, McAuliffe & Sekhon
(2021), "Time-uniform, nonparametric, nonasymptotic confidence sequences" (Ann. Stat.).

The difference estimate ``D = m_t - m_c`` is treated as normal with variance
``V = v_t + v_c`` (plug-in variances, as in Johari et al. section 4). Mixing the alternative
``delta ~ N(0, tau^2)`` gives the likelihood ratio of "some effect" against "none"::

    L = sqrt(V / (V + tau^2)) * exp(tau^2 D^2 / (2 V (V + tau^2)))

a martingale under the null as data accrue, so by Ville's inequality
``P(L ever reaches 1/alpha) <= alpha``: the p-value ``min(1, 1/L)`` may be read after every
new unit and the experiment stopped at the first ``p <= alpha``. (The running minimum of
these p-values over the looks is also valid; this module sees one look and reports the
current one, which is never smaller than the running minimum a caller may keep.)
Inverting the test gives the confidence sequence ``D +- r`` with::

    r^2 = V (V + tau^2) / tau^2 * (2 log(1/alpha) + log((V + tau^2) / V))

The price is width: ``r`` is 1.55 to 1.85 times the fixed-horizon half-width at the
default below (equal arms, alpha = 0.05, 1,000 to 1,000,000 units per arm), so a test of
the same size has less power at its final look (``bench/_experiments_stats.py``: 53%
against the fixed test's 80%), though it may stop as early as the data allow.

``tau`` must be fixed before the data, else the guarantee is lost. It is set in
standardized effect units: ``tau = mixing_sd * sigma`` with ``sigma^2`` the mean of the two
variants' per-unit variances (a nuisance parameter, estimated like ``V``). The default
:data:`DEFAULT_MIXING_SD` = 0.05 (an effect of 5% of a standard deviation, the size A/B
effects usually have) is tightest near 10,000 units per arm and degrades slowly (the
log term) on either side; below ~600 units per arm the sequence is more than twice the
fixed interval. The relative lift uses its delta-method variance (:mod:`._lift`) with
``tau / |m_c|``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats._fixed import require_spread
from mlgate.experiments.stats._lift import (
    Estimate,
    relative_lift,
    relative_undefined_reason,
    relative_variance,
)
from mlgate.experiments.stats._summaries import Moments

__all__ = [
    "DEFAULT_MIXING_SD",
    "SequentialTest",
    "confidence_radius",
    "mixture_likelihood_ratio",
    "msprt",
]

DEFAULT_MIXING_SD = 0.05
"""Standard deviation of the mixing prior on the effect, in units of the metric's sd."""


@dataclass(frozen=True, slots=True)
class SequentialTest:
    """The always-valid p-value and confidence sequences of one look.

    ``mixing_variance`` is ``tau^2`` in the metric's own (squared) units.
    """

    absolute: Estimate
    relative: Estimate | None
    relative_reason: str | None
    p_value: float
    likelihood_ratio: float
    mixing_sd: float
    mixing_variance: float


def mixture_likelihood_ratio(diff: float, variance: float, mixing_variance: float) -> float:
    """The normal-mixture likelihood ratio ``L`` above (``inf`` when it overflows)."""
    shrink = variance + mixing_variance
    log_ratio = 0.5 * math.log(variance / shrink) + (
        mixing_variance * diff * diff / (2.0 * variance * shrink)
    )
    return math.exp(log_ratio) if log_ratio < 700.0 else math.inf


def confidence_radius(variance: float, mixing_variance: float, alpha: float) -> float:
    """Half-width of the ``1 - alpha`` confidence sequence at estimate variance ``variance``."""
    shrink = variance + mixing_variance
    return math.sqrt(
        variance
        * shrink
        / mixing_variance
        * (2.0 * math.log(1.0 / alpha) + math.log(shrink / variance))
    )


def msprt(
    control: Moments,
    treatment: Moments,
    *,
    alpha: float = 0.05,
    mixing_sd: float = DEFAULT_MIXING_SD,
) -> SequentialTest:
    """Always-valid p-value and confidence sequences for ``m_t - m_c`` and the relative lift."""
    if not (math.isfinite(mixing_sd) and mixing_sd > 0):
        raise ExperimentInputError(f"mixing_sd must be a positive number, got {mixing_sd!r}")
    require_spread(control, treatment)
    sigma2 = 0.5 * (control.unit_variance + treatment.unit_variance)
    tau2 = mixing_sd * mixing_sd * sigma2
    variance = control.variance + treatment.variance
    diff = treatment.mean - control.mean
    ratio = mixture_likelihood_ratio(diff, variance, tau2)
    p_value = min(1.0, 1.0 / ratio)
    radius = confidence_radius(variance, tau2, alpha)
    absolute = Estimate(diff, diff - radius, diff + radius)
    reason = relative_undefined_reason(control)
    relative = None
    if reason is None:
        lift = relative_lift(control.mean, treatment.mean)
        r = confidence_radius(relative_variance(control, treatment), tau2 / control.mean**2, alpha)
        relative = Estimate(lift, lift - r, lift + r)
    return SequentialTest(absolute, relative, reason, p_value, ratio, mixing_sd, tau2)
