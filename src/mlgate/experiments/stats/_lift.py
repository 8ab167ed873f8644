"""Absolute and relative lift, and when a relative lift is not worth reporting.

The relative lift ``(mean_t - mean_c) / |mean_c|`` (``mean_t / mean_c - 1`` for the usual
positive metric; dividing by the magnitude keeps its sign that of the absolute lift when the
control mean is negative) is a ratio of two independent estimates; its standard error is the
delta method's (Deng, Knoblich & Lu 2018, section 3.3)::

    Var(m_t / m_c) ~ v_t / m_c**2 + m_t**2 v_c / m_c**4

That first-order expansion is only trustworthy when the control mean is well away from
zero. When ``|m_c|`` is within :data:`RELATIVE_MIN_Z` standard errors of zero (or is zero)
the relative lift is reported as undefined, with a reason, rather than as a confident
interval around a division by noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlgate.experiments.stats._summaries import Moments

__all__ = [
    "RELATIVE_MIN_Z",
    "Estimate",
    "relative_lift",
    "relative_undefined_reason",
    "relative_variance",
]

RELATIVE_MIN_Z = 3.0
"""A relative lift needs the control mean at least this many standard errors from zero."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with the interval around it (confidence, sequence or credible)."""

    estimate: float
    low: float
    high: float


def relative_undefined_reason(control: Moments) -> str | None:
    """Why the relative lift cannot be reported for this control, or None when it can."""
    if control.mean == 0:
        return "the control mean is 0, so a relative lift is undefined; use difference: absolute"
    se = math.sqrt(control.variance)
    if abs(control.mean) < RELATIVE_MIN_Z * se:
        return (
            f"the control mean {control.mean:.6g} is within {RELATIVE_MIN_Z:g} standard errors "
            f"({se:.6g}) of 0, so a relative lift would divide by noise; collect more data "
            "or use difference: absolute"
        )
    return None


def relative_lift(control_mean: float, treatment_mean: float) -> float:
    """``(treatment - control) / |control|``: ``treatment / control - 1`` for a positive control."""
    return (treatment_mean - control_mean) / abs(control_mean)


def relative_variance(control: Moments, treatment: Moments) -> float:
    """Delta-method variance of the relative lift (the same for both signs of ``mean_c``)."""
    mc, mt = control.mean, treatment.mean
    return treatment.variance / mc**2 + mt**2 * control.variance / mc**4
