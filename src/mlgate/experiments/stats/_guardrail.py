"""Guardrails: metrics a treatment must not harm (latency, error rate) beyond a tolerance.

A guardrail declares the direction of harm and a relative tolerance ``tol`` (0.02 = "up to
2% worse is acceptable"). It fails when the data show, one-sided at level alpha, that the
harm exceeds the tolerance. For ``harm = "increase"`` that is the test of::

    H0: m_t <= (1 + tol) m_c   against   H1: m_t > (1 + tol) m_c

on the linear contrast ``L = m_t - (1 + tol) m_c``, whose variance ``v_t + (1 + tol)^2 v_c``
is exact: no delta method, and a control mean of 0 (no errors yet) needs no special case.
``harm = "decrease"`` uses ``L = (1 - tol) m_c - m_t``. The tolerance is relative to the
control's level, so the metric should be non-negative (rates, durations, counts).

Means use Student's t with the Welch-Satterthwaite degrees of freedom of ``L``;
proportions and ratios the normal distribution. A guardrail is a fixed-horizon test
whatever the main method: reading it at every look makes it fail more readily, which is the
safe direction for a guardrail. Too little data (fewer than 2 units, or no variance in
either arm) gives status ``"not_enough_data"``, never a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import stats

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats._summaries import Moments

__all__ = ["GuardrailStatus", "GuardrailTest", "Harm", "guardrail_test"]

Harm = Literal["increase", "decrease"]
GuardrailStatus = Literal["pass", "fail", "not_enough_data"]


@dataclass(frozen=True, slots=True)
class GuardrailTest:
    """One guardrail's one-sided test; ``p_value`` is None when there was not enough data."""

    harm: Harm
    tolerance: float
    control_mean: float
    treatment_mean: float
    relative_change: float | None
    p_value: float | None
    status: GuardrailStatus
    reason: str | None


def guardrail_test(
    control: Moments,
    treatment: Moments,
    *,
    harm: Harm,
    tolerance: float = 0.0,
    alpha: float = 0.05,
    use_t: bool = False,
) -> GuardrailTest:
    """One-sided test that the treatment harms the metric by more than ``tolerance``."""
    if harm not in ("increase", "decrease"):
        raise ExperimentInputError(f"harm must be 'increase' or 'decrease', got {harm!r}")
    if not (math.isfinite(tolerance) and 0.0 <= tolerance < 1.0):
        raise ExperimentInputError(
            f"tolerance is {tolerance!r}; give the acceptable relative harm in [0, 1) (0.02 for 2%)"
        )
    mc, mt = control.mean, treatment.mean
    change = (mt - mc) / abs(mc) if control.n and mc != 0 and math.isfinite(mc) else None

    def answer(p: float | None, status: GuardrailStatus, reason: str | None) -> GuardrailTest:
        return GuardrailTest(harm, tolerance, mc, mt, change, p, status, reason)

    if min(control.n, treatment.n) < 2 or math.isnan(mc) or math.isnan(mt):
        return answer(None, "not_enough_data", "fewer than 2 units in a variant")
    c = 1.0 + tolerance if harm == "increase" else 1.0 - tolerance
    contrast = mt - c * mc if harm == "increase" else c * mc - mt
    vt, vc = treatment.variance, c * c * control.variance
    if vt + vc == 0:
        return answer(None, "not_enough_data", "both variants are constant (zero variance)")
    z = contrast / math.sqrt(vt + vc)
    if use_t:
        df = (vt + vc) ** 2 / (vt**2 / (treatment.n - 1) + vc**2 / (control.n - 1))
        p = float(stats.t.sf(z, df))
    else:
        p = float(stats.norm.sf(z))
    if p < alpha:
        worse = "higher" if harm == "increase" else "lower"
        return answer(
            p,
            "fail",
            f"the treatment is significantly {worse} than the control by more than "
            f"{tolerance:.4g} (relative), one-sided p = {p:.3g} < {alpha:g}",
        )
    return answer(p, "pass", None)
