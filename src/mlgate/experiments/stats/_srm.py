"""Sample-ratio mismatch: did the traffic split the way the experiment was configured?

A split that is off (say 50.6/49.4 over 100,000 users when 50/50 was configured) means the
assignment or the logging is broken for some units, and those units are rarely missing at
random: every metric comparison is then suspect, so a failed check blocks the verdict
rather than adding a footnote to it (Fabijan et al. 2019, "Diagnosing Sample Ratio
Mismatch in Online Controlled Experiments", KDD).

The check is Pearson's chi-square goodness-of-fit of the unit counts against the
configured weights (``scipy.stats.chisquare``), ``k - 1`` degrees of freedom, and fails
below :data:`DEFAULT_SRM_THRESHOLD` = 0.001: strict, because it runs on every look of every
experiment and a false block costs a rerun. Arms with weight 0 take no part in the test; if
such an arm received units the configuration is not what ran, and the check fails outright
(p = 0) with that reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from scipy import stats

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats._summaries import check_number

__all__ = ["DEFAULT_SRM_THRESHOLD", "WEIGHT_TOLERANCE", "SRMCheck", "check_weights", "srm_check"]

DEFAULT_SRM_THRESHOLD = 0.001
WEIGHT_TOLERANCE = 1e-6
"""How far from 1 the configured weights may sum (rounding in a config file)."""


@dataclass(frozen=True, slots=True)
class SRMCheck:
    """The chi-square statistic and p-value, and whether the split passes.

    ``tested`` lists the arms in the test (positive weight); ``reason`` explains a failure.
    """

    p_value: float
    statistic: float
    passed: bool
    threshold: float
    observed: Mapping[str, int]
    expected: Mapping[str, float]
    tested: tuple[str, ...]
    reason: str | None


def check_weights(weights: Mapping[str, object], variants: tuple[str, ...]) -> dict[str, float]:
    """Weights for exactly these variants, each in [0, 1], summing to 1 (within 1e-6)."""
    if set(weights) != set(variants):
        raise ExperimentInputError(
            f"weights name {sorted(weights)} but the variants are {sorted(variants)}; "
            "give one weight per variant"
        )
    checked = {name: check_number(f"weights.{name}", weights[name]) for name in variants}
    for name, w in checked.items():
        if not 0.0 <= w <= 1.0:
            raise ExperimentInputError(f"weights.{name} is {w!r}; a weight lies in [0, 1]")
    total = math.fsum(checked.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ExperimentInputError(
            f"the weights sum to {total!r}, not 1; give each variant's share of traffic "
            "as configured (0.5 and 0.5 for an even split)"
        )
    return checked


def srm_check(
    counts: Mapping[str, int],
    weights: Mapping[str, float],
    *,
    threshold: float = DEFAULT_SRM_THRESHOLD,
) -> SRMCheck:
    """Chi-square test of the unit counts against the configured weights."""
    names = tuple(counts)
    w = check_weights(weights, names)
    total = sum(counts.values())
    expected = {name: total * w[name] for name in names}
    stray = [name for name in names if w[name] == 0.0 and counts[name] > 0]
    if stray:
        why = (
            f"variant(s) {stray} have weight 0 but received units; the traffic split that ran "
            "is not the one configured: fix the assignment or the weights"
        )
        return SRMCheck(0.0, math.inf, False, threshold, dict(counts), expected, (), why)
    tested = tuple(name for name in names if w[name] > 0.0)
    if total == 0 or len(tested) < 2:
        # Nothing can be mismatched: no units yet, or a single arm takes all the traffic.
        return SRMCheck(1.0, 0.0, True, threshold, dict(counts), expected, tested, None)
    observed = [counts[name] for name in tested]
    exp = [expected[name] for name in tested]
    statistic, p_value = stats.chisquare(observed, exp)
    p = float(p_value)
    passed = p >= threshold
    reason: str | None = None
    if not passed:
        shares = ", ".join(
            f"{name} {counts[name] / total:.4f} (want {w[name]:g})" for name in tested
        )
        reason = (
            f"sample-ratio mismatch: p = {p:.3g} < {threshold:g}; observed shares {shares}. "
            "Units are being lost or mis-assigned; find out why before reading any metric"
        )
    return SRMCheck(p, float(statistic), passed, threshold, dict(counts), expected, tested, reason)
