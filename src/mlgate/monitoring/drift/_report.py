"""The drift report's types and their JSON form (the shape outside checks rely on).

``DriftReport.to_json()`` gives at least::

    {"drifted": bool, "share_drifted": float, "method": {...}, "reason": str,
     "features": {NAME: {"drifted": bool, "status": str, "reason": str,
                         "decided_by": str, "threshold": float | None,
                         "n_reference": int, "n_current": int,
                         "psi": v, "js": v, "kl": v,
                         "ks": {"statistic": s, "p_value": p}, "wasserstein": v,   # numeric
                         "chi2": {"statistic": s, "p_value": p, "dof": k},          # categorical
                         ...}}}

Every statistic is reported whichever one decides. A value that cannot be computed (no
data on one side) or is not finite (Wasserstein against a constant reference) is ``null``,
and the feature's ``reason`` says why; JSON has no NaN or infinity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from mlgate.monitoring._columns import FeatureKind
from mlgate.monitoring.stats import Chi2Result, KSResult

__all__ = ["DriftReport", "FeatureDrift", "FeatureStatus", "TestName"]

FeatureStatus = Literal["ok", "too_small", "empty", "constant", "missing_column", "all_missing"]
TestName = Literal["ks", "chi2", "psi"]


def _num(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """The verdict on one feature, with every statistic and the numbers that decided it.

    ``p_value`` is the raw p-value of ``test``; ``p_value_adjusted`` the one after the
    multiple-testing correction, None when the feature was not judged. ``thresholds`` holds
    the threshold of each criterion applied: ``p_value`` (alpha), ``psi`` (sample-size
    aware) and ``wasserstein`` or ``js``. ``decided_by`` names the criterion that settled the
    verdict (the test, or an effect size) and ``threshold`` its threshold; for a feature that
    was not judged ``decided_by`` is its status (``threshold`` is ``min_samples`` for
    ``too_small``, else None).
    """

    name: str
    kind: FeatureKind
    status: FeatureStatus
    drifted: bool
    reason: str
    test: TestName
    decided_by: str
    threshold: float | None
    n_reference: int
    n_current: int
    missing_reference: int
    missing_current: int
    psi: float | None = None
    kl: float | None = None
    js: float | None = None
    ks: KSResult | None = None
    wasserstein: float | None = None
    chi2: Chi2Result | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    infinite_reference: int = 0
    infinite_current: int = 0
    new_categories: tuple[str, ...] = ()
    new_category_share: float | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "kind": self.kind,
            "status": self.status,
            "drifted": self.drifted,
            "reason": self.reason,
            "test": self.test,
            "decided_by": self.decided_by,
            "threshold": _num(self.threshold),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "missing_reference": self.missing_reference,
            "missing_current": self.missing_current,
            "psi": _num(self.psi),
            "kl": _num(self.kl),
            "js": _num(self.js),
        }
        if self.kind == "numeric":
            ks = self.ks
            out["ks"] = {
                "statistic": _num(ks.statistic) if ks else None,
                "p_value": _num(ks.p_value) if ks else None,
            }
            out["wasserstein"] = _num(self.wasserstein)
            out["infinite_reference"] = self.infinite_reference
            out["infinite_current"] = self.infinite_current
        if self.kind == "categorical" or self.test == "chi2":
            chi2 = self.chi2
            out["chi2"] = {
                "statistic": _num(chi2.statistic) if chi2 else None,
                "p_value": _num(chi2.p_value) if chi2 else None,
                "dof": chi2.dof if chi2 else None,
            }
        if self.kind == "categorical":
            out["new_categories"] = list(self.new_categories)
            out["new_category_share"] = _num(self.new_category_share)
        out["p_value"] = _num(self.p_value)
        out["p_value_adjusted"] = _num(self.p_value_adjusted)
        out["thresholds"] = {k: _num(v) for k, v in self.thresholds.items()}
        return out


@dataclass(frozen=True, slots=True)
class DriftReport:
    """The dataset verdict, the share of drifted features, and each feature's verdict.

    ``method`` records how the verdict was reached (tests, correction, alpha, effect-size
    thresholds, minimum sample size, dataset rule) so a stored report can be read alone.
    ``ignored_columns`` are current-window columns the reference does not have.
    """

    drifted: bool
    share_drifted: float
    n_drifted: int
    reason: str
    method: Mapping[str, object]
    features: Mapping[str, FeatureDrift]
    n_reference_rows: int
    n_current_rows: int
    ignored_columns: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "drifted": self.drifted,
            "share_drifted": self.share_drifted,
            "n_drifted": self.n_drifted,
            "n_features": len(self.features),
            "reason": self.reason,
            "method": dict(self.method),
            "n_reference_rows": self.n_reference_rows,
            "n_current_rows": self.n_current_rows,
            "ignored_columns": list(self.ignored_columns),
            "features": {name: f.to_json() for name, f in self.features.items()},
        }
