"""Which number settled a feature's verdict, for tables that show "value vs threshold".

:class:`~mlgate.monitoring.drift.FeatureDrift` names the deciding criterion
(``decided_by``) and its threshold; this finds the value compared with it.
"""

from __future__ import annotations

from mlgate.monitoring.drift import FeatureDrift

__all__ = ["deciding_value"]


def deciding_value(feature: FeatureDrift) -> float | None:
    """The value ``feature.decided_by`` compared with ``feature.threshold``, None if none.

    The test decides (its adjusted p-value against alpha) when the p-value is above alpha,
    or when no effect size could gate the feature; otherwise the named effect size decided.
    A ``too_small`` feature compares its smaller window's count with ``min_samples``.
    """
    if feature.p_value_adjusted is None:
        if feature.status == "too_small":
            return float(min(feature.n_reference, feature.n_current))
        return None
    alpha = feature.thresholds.get("p_value")
    effects = {"psi": feature.psi, "wasserstein": feature.wasserstein, "js": feature.js}
    gated = feature.decided_by in effects and feature.decided_by in feature.thresholds
    test_decided = alpha is not None and feature.p_value_adjusted > alpha
    if feature.decided_by == feature.test and (test_decided or not gated):
        return feature.p_value_adjusted
    return effects.get(feature.decided_by)
