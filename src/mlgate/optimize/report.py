"""The outcome of one ``optimize`` run: one row per measured model, the parent included.

``OptimizeReport.to_json()`` is the shape ``mlgate optimize --json`` prints and outside
checks rely on: ``{"variants": [{"version", "kind", "size_bytes", "p50_us", "rows_per_s",
"accuracy_delta", ...}]}`` with the parent as the row of kind ``"parent"``. Every row in
``variants`` was built and measured; kinds that did not apply or could not be built are
listed under ``skipped`` with their reason. ``record()`` is what the ledger digests:
every number in it is finite or None (an infinite difference, a NaN metric), since a
canonical JSON digest has no spelling for NaN or infinity. ``holdout_rows`` counts the
rows compared on; ``calibration_rows`` those static int8 was calibrated on (None when it
was not built).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlgate.optimize.compare import Comparison
from mlgate.optimize.measure import Measurement
from mlgate.optimize.tolerance import Tolerances

__all__ = ["STATUSES", "OptimizeReport", "SkippedKind", "VariantResult"]

# parent: the version optimised; registered: a new version; existing: the same bytes were
# already registered (a rerun); rejected: outside tolerance, not registered by this run
# (its reasons name the version when the same bytes were registered before).
STATUSES = ("parent", "registered", "existing", "rejected")


@dataclass(frozen=True)
class VariantResult:
    kind: str
    status: str
    measurement: Measurement
    version: int | None = None
    comparison: Comparison | None = None
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        c = self.comparison
        deltas = c.deltas if c is not None else {}
        return {
            "version": self.version,
            "kind": self.kind,
            **self.measurement.to_json(),
            "accuracy_delta": deltas.get("accuracy"),
            "rmse_delta": deltas.get("rmse"),
            "mae_delta": deltas.get("mae"),
            "label_agreement": c.label_agreement if c is not None else None,
            "max_probability_diff": c.max_probability_diff if c is not None else None,
            "max_scaled_prediction_diff": c.max_scaled_prediction_diff if c is not None else None,
            "status": self.status,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class SkippedKind:
    kind: str
    status: str  # "skipped" (does not apply) or "failed" (building, comparing or measuring raised)
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class OptimizeReport:
    model: str
    parent_version: int
    holdout_rows: int
    labelled: bool
    tolerances: Tolerances
    variants: tuple[VariantResult, ...]
    skipped: tuple[SkippedKind, ...] = ()
    calibration_rows: int | None = None
    ledger_seq: int | None = field(default=None, compare=False)

    @property
    def registered(self) -> tuple[VariantResult, ...]:
        """Variants now served as versions: new ones and those a rerun found."""
        return tuple(v for v in self.variants if v.status in ("registered", "existing"))

    @property
    def rejected(self) -> tuple[VariantResult, ...]:
        return tuple(v for v in self.variants if v.status == "rejected")

    def record(self) -> dict[str, Any]:
        """Everything but the ledger index: the document the ledger entry digests."""
        document = {
            "model": self.model,
            "parent_version": self.parent_version,
            "holdout_rows": self.holdout_rows,
            "calibration_rows": self.calibration_rows,
            "labelled": self.labelled,
            "tolerances": {
                "exact": self.tolerances.exact.to_json(),
                "reduced": self.tolerances.reduced.to_json(),
            },
            "variants": [v.to_json() for v in self.variants],
            "skipped": [s.to_json() for s in self.skipped],
        }
        result: dict[str, Any] = _finite(document)
        return result

    def to_json(self) -> dict[str, Any]:
        return {**self.record(), "ledger_seq": self.ledger_seq}


def _finite(value: Any) -> Any:
    """``value`` with every float that is NaN or infinite, at any depth, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
