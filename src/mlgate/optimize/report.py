"""The outcome of one ``optimize`` run: one row per measured model, the parent included.

``OptimizeReport.to_json()`` is the shape ``mlgate optimize --json`` prints and outside
checks rely on: ``{"variants": [{"version", "kind", "size_bytes", "p50_us", "rows_per_s",
"accuracy_delta", ...}]}`` with the parent as the row of kind ``"parent"``. Every row in
``variants`` was built and measured; kinds that did not apply or could not be built are
listed under ``skipped`` with their reason. ``record()`` is what the ledger digests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlgate.optimize.compare import Comparison, Tolerances
from mlgate.optimize.measure import Measurement

__all__ = ["STATUSES", "OptimizeReport", "SkippedKind", "VariantResult"]

# parent: the version optimised; registered: a new version; existing: the same bytes were
# already registered (a rerun); rejected: outside tolerance, not registered.
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
    status: str  # "skipped" (does not apply) or "failed" (the builder raised)
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
        return {
            "model": self.model,
            "parent_version": self.parent_version,
            "holdout_rows": self.holdout_rows,
            "labelled": self.labelled,
            "tolerances": {
                "exact": self.tolerances.exact.to_json(),
                "reduced": self.tolerances.reduced.to_json(),
            },
            "variants": [v.to_json() for v in self.variants],
            "skipped": [s.to_json() for s in self.skipped],
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.record(), "ledger_seq": self.ledger_seq}
