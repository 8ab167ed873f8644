"""Fixed-horizon tests: Welch's t for means, the two-proportion z-test, a z-test for ratios.

Valid when the sample size was fixed in advance and the data are looked at once; peeking
at them as they arrive and stopping at the first p < alpha inflates the false-positive rate
several times over (see :mod:`._sequential` for the test that allows it).

- Means: Welch's unequal-variance t-test with the Welch-Satterthwaite degrees of freedom,
  ``scipy.stats.ttest_ind_from_stats(..., equal_var=False)``'s numbers.
- Proportions: the p-value is the pooled two-proportion z-test
  (``statsmodels.stats.proportion.proportions_ztest``), the interval the unpooled Wald
  interval (``confint_proportions_2indep(method="wald")``). The pooled variance is the
  right one under the null, the unpooled one away from it, so at the edge of significance
  the two can disagree; ``significant`` follows the p-value.
- Ratios and CUPED-adjusted metrics: a large-sample z-test on the estimates' variances.

Every test reports the absolute lift ``m_t - m_c`` and, where defined, the relative lift
``(m_t - m_c) / |m_c|`` (delta method, :mod:`._lift`), each with a two-sided ``1 - alpha``
interval built from the same critical value as the p-value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import stats

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats._lift import (
    Estimate,
    relative_lift,
    relative_undefined_reason,
    relative_variance,
)
from mlgate.experiments.stats._summaries import Moments, ProportionSummary

__all__ = [
    "FixedHorizonTest",
    "TestName",
    "require_spread",
    "two_proportion_z_test",
    "welch_t_test",
    "z_test",
]

TestName = Literal["welch_t", "two_proportion_z", "z"]


@dataclass(frozen=True, slots=True)
class FixedHorizonTest:
    """Both lifts with their intervals, and the two-sided p-value of "no difference".

    ``relative`` is None where the relative lift is undefined (``relative_reason`` says
    why). ``df`` is infinite for the z-tests.
    """

    test: TestName
    absolute: Estimate
    relative: Estimate | None
    relative_reason: str | None
    p_value: float
    statistic: float
    df: float


def require_spread(control: Moments, treatment: Moments) -> None:
    """Refuse to test two variants that both show zero variance (or too few units)."""
    for name, m in (("control", control), ("treatment", treatment)):
        if m.n < 2 or math.isnan(m.unit_variance):
            raise ExperimentInputError(
                f"the {name} has {m.n} unit(s); a test needs at least 2 per variant with a "
                "defined mean: wait for more data"
            )
    if control.variance + treatment.variance == 0:
        raise ExperimentInputError(
            "both variants are constant (zero variance), so there is no noise to test a "
            "difference against; check that the metric is logged, or wait for more data"
        )


def _relative(
    control: Moments, treatment: Moments, critical: float
) -> tuple[Estimate | None, str | None]:
    reason = relative_undefined_reason(control)
    if reason is not None:
        return None, reason
    lift = relative_lift(control.mean, treatment.mean)
    half = critical * math.sqrt(relative_variance(control, treatment))
    return Estimate(lift, lift - half, lift + half), None


def _build(
    test: TestName,
    control: Moments,
    treatment: Moments,
    *,
    alpha: float,
    se_null: float,
    df: float,
) -> FixedHorizonTest:
    diff = treatment.mean - control.mean
    se = math.sqrt(control.variance + treatment.variance)
    statistic = diff / se_null
    dist = stats.t(df) if math.isfinite(df) else stats.norm
    p_value = float(min(1.0, 2.0 * dist.sf(abs(statistic))))
    critical = float(dist.isf(alpha / 2.0))
    absolute = Estimate(diff, diff - critical * se, diff + critical * se)
    relative, reason = _relative(control, treatment, critical)
    return FixedHorizonTest(test, absolute, relative, reason, p_value, statistic, df)


def welch_t_test(control: Moments, treatment: Moments, *, alpha: float = 0.05) -> FixedHorizonTest:
    """Welch's t-test of ``mean_t - mean_c`` (unequal variances, Satterthwaite's df)."""
    require_spread(control, treatment)
    vc, vt = control.variance, treatment.variance
    df = (vc + vt) ** 2 / (vc**2 / (control.n - 1) + vt**2 / (treatment.n - 1))
    return _build("welch_t", control, treatment, alpha=alpha, se_null=math.sqrt(vc + vt), df=df)


def z_test(control: Moments, treatment: Moments, *, alpha: float = 0.05) -> FixedHorizonTest:
    """Large-sample z-test on the two estimates' variances (ratios, CUPED proportions)."""
    require_spread(control, treatment)
    se = math.sqrt(control.variance + treatment.variance)
    return _build("z", control, treatment, alpha=alpha, se_null=se, df=math.inf)


def two_proportion_z_test(
    control: ProportionSummary, treatment: ProportionSummary, *, alpha: float = 0.05
) -> FixedHorizonTest:
    """Pooled two-proportion z-test, with unpooled Wald intervals for both lifts."""
    mc, mt = control.moments(), treatment.moments()
    require_spread(mc, mt)
    pooled = (control.successes + treatment.successes) / (control.n + treatment.n)
    se_null = math.sqrt(pooled * (1.0 - pooled) * (1.0 / control.n + 1.0 / treatment.n))
    return _build("two_proportion_z", mc, mt, alpha=alpha, se_null=se_null, df=math.inf)
