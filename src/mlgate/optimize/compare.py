"""Does a variant still give its parent's answers? Measured on a holdout, judged by a tolerance.

Both models answer the same rows through mlgate's ``LoadedModel.predict`` (the parent
through the sklearn flavor, the variant through onnxruntime), so what is compared is what
serving would return. For classifiers: the share of rows whose label agrees and the
largest absolute probability difference; for regressors: the largest prediction
difference, scaled by ``max(1, max |parent prediction|)`` so one bound fits targets of any
size. With true labels, metric deltas too (accuracy; RMSE and MAE), variant minus parent.

A plain conversion should change nothing but float rounding, so it is held to a tight
bound; quantized and float16 variants trade a little accuracy for speed and are held to
agreement and metric bounds instead (:class:`Tolerances`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlgate.errors import OptimizeError

__all__ = ["Comparison", "Tolerance", "Tolerances", "compare_outputs"]

Outputs = Mapping[str, np.ndarray[Any, Any]]


@dataclass(frozen=True)
class Tolerance:
    """Bounds a variant must meet; None leaves that bound unchecked."""

    max_probability_diff: float | None = None
    min_label_agreement: float | None = 0.99
    max_accuracy_drop: float | None = 0.01
    max_scaled_prediction_diff: float | None = 0.05
    # Relative: 0.01 allows the variant's RMSE to be 1% above the parent's.
    max_rmse_increase: float | None = 0.01

    def to_json(self) -> dict[str, float | None]:
        return {
            "max_probability_diff": self.max_probability_diff,
            "min_label_agreement": self.min_label_agreement,
            "max_accuracy_drop": self.max_accuracy_drop,
            "max_scaled_prediction_diff": self.max_scaled_prediction_diff,
            "max_rmse_increase": self.max_rmse_increase,
        }


_EXACT = Tolerance(max_probability_diff=1e-4, max_scaled_prediction_diff=1e-4)


@dataclass(frozen=True)
class Tolerances:
    """``exact`` for the plain ONNX conversion, ``reduced`` for int8 and float16 variants."""

    exact: Tolerance = field(default_factory=lambda: _EXACT)
    reduced: Tolerance = field(default_factory=Tolerance)

    def for_kind(self, kind: str) -> Tolerance:
        return self.exact if kind == "onnx" else self.reduced


@dataclass(frozen=True)
class Comparison:
    """What differed between parent and variant on ``rows`` holdout rows."""

    rows: int
    label_agreement: float | None = None
    max_probability_diff: float | None = None
    max_scaled_prediction_diff: float | None = None
    parent_metrics: Mapping[str, float] = field(default_factory=dict)
    variant_metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def deltas(self) -> dict[str, float]:
        """Variant minus parent for every metric both have (accuracy, rmse, mae)."""
        return {
            name: self.variant_metrics[name] - value
            for name, value in self.parent_metrics.items()
            if name in self.variant_metrics
        }

    @property
    def accuracy_delta(self) -> float | None:
        return self.deltas.get("accuracy")

    def check(self, tolerance: Tolerance) -> tuple[str, ...]:
        """The bounds this comparison breaks, each as a sentence; empty when it passes."""
        reasons: list[str] = []
        t = tolerance
        if _above(self.max_probability_diff, t.max_probability_diff):
            reasons.append(
                f"probabilities differ by up to {self.max_probability_diff:.3g}, "
                f"above the tolerance {t.max_probability_diff:.3g}"
            )
        if _above(self.max_scaled_prediction_diff, t.max_scaled_prediction_diff):
            reasons.append(
                f"predictions differ by up to {self.max_scaled_prediction_diff:.3g} (scaled), "
                f"above the tolerance {t.max_scaled_prediction_diff:.3g}"
            )
        if (
            self.label_agreement is not None
            and t.min_label_agreement is not None
            and self.label_agreement < t.min_label_agreement
        ):
            reasons.append(
                f"labels agree on {self.label_agreement:.2%} of rows, below the required "
                f"{t.min_label_agreement:.2%}"
            )
        accuracy = self.accuracy_delta
        if accuracy is not None and _above(-accuracy, t.max_accuracy_drop):
            reasons.append(
                f"accuracy drops by {-accuracy:.4f}, more than the allowed {t.max_accuracy_drop}"
            )
        rmse = self.parent_metrics.get("rmse"), self.variant_metrics.get("rmse")
        if rmse[0] is not None and rmse[1] is not None and t.max_rmse_increase is not None:
            increase = (rmse[1] - rmse[0]) / max(rmse[0], 1e-12)
            if increase > t.max_rmse_increase:
                reasons.append(
                    f"RMSE rises by {increase:.2%}, more than the allowed {t.max_rmse_increase:.2%}"
                )
        return tuple(reasons)

    def metrics(self) -> dict[str, float]:
        """The finite numbers, flat, for a registered version's metrics."""
        found: dict[str, float | None] = {
            "label_agreement": self.label_agreement,
            "max_probability_diff": self.max_probability_diff,
            "max_scaled_prediction_diff": self.max_scaled_prediction_diff,
            **{f"holdout_{k}": v for k, v in self.variant_metrics.items()},
            **{f"{k}_delta": v for k, v in self.deltas.items()},
        }
        return {k: v for k, v in found.items() if v is not None and math.isfinite(v)}

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "label_agreement": self.label_agreement,
            "max_probability_diff": self.max_probability_diff,
            "max_scaled_prediction_diff": self.max_scaled_prediction_diff,
            "parent_metrics": dict(self.parent_metrics),
            "variant_metrics": dict(self.variant_metrics),
            "deltas": self.deltas,
        }


def compare_outputs(
    parent: Outputs, variant: Outputs, labels: np.ndarray[Any, Any] | None = None
) -> Comparison:
    """Compare two models' outputs for the same rows (and score both when labels are given)."""
    if "label" in parent:
        expected, got = np.asarray(parent["label"]), np.asarray(variant["label"])
        rows = len(expected)
        proba = None
        if "probabilities" in parent:
            diff = np.abs(np.asarray(parent["probabilities"]) - variant["probabilities"])
            proba = float(diff.max()) if diff.size else 0.0
        scores: tuple[dict[str, float], dict[str, float]] = ({}, {})
        if labels is not None:
            truth = _labels(labels, rows)
            scores = (
                {"accuracy": float(np.mean(expected == truth))},
                {"accuracy": float(np.mean(got == truth))},
            )
        return Comparison(
            rows=rows,
            label_agreement=float(np.mean(expected == got)) if rows else 1.0,
            max_probability_diff=proba,
            parent_metrics=scores[0],
            variant_metrics=scores[1],
        )
    expected = np.asarray(parent["prediction"], dtype=np.float64)
    got = np.asarray(variant["prediction"], dtype=np.float64)
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    diff = float(np.abs(expected - got).max()) / scale if expected.size else 0.0
    metrics: tuple[dict[str, float], dict[str, float]] = ({}, {})
    if labels is not None:
        truth = _labels(labels, len(expected)).astype(np.float64).reshape(expected.shape)
        metrics = (_regression(expected, truth), _regression(got, truth))
    return Comparison(
        rows=len(expected),
        max_scaled_prediction_diff=diff,
        parent_metrics=metrics[0],
        variant_metrics=metrics[1],
    )


def _labels(labels: np.ndarray[Any, Any], rows: int) -> np.ndarray[Any, Any]:
    truth = np.asarray(labels)
    if len(truth) != rows:
        raise OptimizeError(
            f"{len(truth)} labels for {rows} holdout rows; pass one label per row, in order"
        )
    return truth


def _regression(predicted: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]) -> dict[str, float]:
    error = predicted - truth
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
    }


def _above(value: float | None, bound: float | None) -> bool:
    return value is not None and bound is not None and value > bound
