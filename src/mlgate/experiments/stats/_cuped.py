"""CUPED: variance reduction with a pre-period covariate, from summary statistics.

Deng, Xu, Kohavi & Walker (2013), "Improving the Sensitivity of Online Controlled
Experiments by Utilizing Pre-Experiment Data" (WSDM). Each unit's metric ``y`` is replaced by
``y - theta (x - mean_x)``, where ``x`` is the same unit's value before the experiment
(last month's spend for this month's). Randomisation makes ``x`` independent of the
assignment, so the adjusted means estimate the same difference with variance multiplied
by ``1 - rho^2``.

``theta`` is pooled across variants from within-variant centred sums,
``theta = sum_v S_xy(v) / sum_v S_xx(v)``, and ``mean_x`` is the grand mean over all units:
one ``theta`` for every variant keeps the adjustment a common transformation of the data.
Like every CUPED implementation it treats the estimated ``theta`` as fixed, which costs
``O(1/n)`` in the variance. Per variant the adjusted moments are::

    mean'  = mean_y - theta (mean_x(v) - mean_x)
    var'   = (S_yy - 2 theta S_xy + theta^2 S_xx) / (n - 1)

exactly what a t-test on the adjusted raw values would see (checked in the tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats._summaries import (
    CovariateSummary,
    MeanSummary,
    Moments,
    ProportionSummary,
    centred_sum_squares,
    check_covariate,
)

__all__ = ["CupedAdjustment", "cuped"]


@dataclass(frozen=True, slots=True)
class CupedAdjustment:
    """The pooled ``theta``, the covariate's grand mean, and every variant's adjusted moments.

    ``variance_reduction`` is ``1 - sum(adjusted S_yy) / sum(S_yy)``, the share of
    within-variant variance the covariate explained (0 when it explains none).
    """

    theta: float
    covariate_mean: float
    moments: Mapping[str, Moments]
    variance_reduction: float


def _sums(summary: MeanSummary | ProportionSummary) -> tuple[int, float, float]:
    if isinstance(summary, ProportionSummary):
        # A 0/1 metric is its own square.
        return summary.n, float(summary.successes), float(summary.successes)
    return summary.n, summary.sum, summary.sum_squares


def cuped(
    variants: Mapping[str, MeanSummary | ProportionSummary],
    covariates: Mapping[str, CovariateSummary],
) -> CupedAdjustment:
    """CUPED-adjusted moments for every variant (each must have at least 2 units)."""
    if set(covariates) != set(variants):
        raise ExperimentInputError(
            f"CUPED needs a covariate for every variant: got {sorted(covariates)} for "
            f"{sorted(variants)}; give each variant a covariate or none"
        )
    rows = {}
    total_n, total_x = 0, 0.0
    for name, summary in variants.items():
        n, sy, syy = _sums(summary)
        c = covariates[name]
        check_covariate(n, sy, syy, c)
        if n < 2:
            raise ExperimentInputError(
                f"variant {name!r} has {n} unit(s); CUPED needs at least 2 per variant"
            )
        sxx = centred_sum_squares(f"{name}.covariate.sum_squares", n, c.sum, c.sum_squares)
        s_yy = centred_sum_squares(f"{name}.sum_squares", n, sy, syy)
        s_xy = c.sum_products - c.sum * sy / n
        rows[name] = (n, sy / n, c.sum / n, s_yy, sxx, s_xy)
        total_n += n
        total_x += c.sum
    pooled_xx = sum(r[4] for r in rows.values())
    pooled_xy = sum(r[5] for r in rows.values())
    # A constant covariate explains nothing: theta = 0 leaves the metric as it is.
    theta = pooled_xy / pooled_xx if pooled_xx > 0 else 0.0
    grand_x = total_x / total_n
    moments = {}
    before = after = 0.0
    for name, (n, mean_y, mean_x, s_yy, sxx, s_xy) in rows.items():
        adjusted = max(s_yy - 2.0 * theta * s_xy + theta * theta * sxx, 0.0)
        moments[name] = Moments(n, mean_y - theta * (mean_x - grand_x), adjusted / (n - 1))
        before += s_yy
        after += adjusted
    reduction = 1.0 - after / before if before > 0 else 0.0
    return CupedAdjustment(theta, grand_x, moments, reduction)
