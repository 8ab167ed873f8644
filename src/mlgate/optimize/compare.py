"""Does a variant still give its parent's answers? Measured on a holdout, judged by a tolerance.

Both models answer the same rows through mlgate's ``LoadedModel.predict`` (the parent
through the sklearn flavor, the variant through onnxruntime), so what is compared is what
serving would return. For classifiers: the share of rows whose label agrees and the
largest absolute probability difference; for regressors: the largest prediction
difference, each row's divided by ``max(1, |its parent prediction|, median |parent
prediction|)``, so one bound fits targets of any size, rows near zero are judged against
the typical size, and one outlier cannot loosen the bound for the others. With true
labels, metric deltas too (accuracy; RMSE and MAE), variant minus parent.

A comparison fails, rather than passing vacuously, when the variant's outputs differ in
shape or kind from the parent's, or hold NaN or infinity where the parent's do not
(``NaN > bound`` is False, so such a difference would otherwise meet every bound).

Whether the differences are acceptable is :meth:`Comparison.check`'s call, against a
:class:`~mlgate.optimize.tolerance.Tolerance` (re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlgate.errors import OptimizeError
from mlgate.optimize.tolerance import Tolerance, Tolerances

__all__ = ["Comparison", "Tolerance", "Tolerances", "compare_outputs"]

Outputs = Mapping[str, np.ndarray[Any, Any]]
# Below this share of the targets' RMS the parent's RMSE is no yardstick: a float32
# conversion of a model that fits its rows exactly (RMSE 0) changes the RMSE by ~1e-8 of
# the targets, which must not read as an "increase of 13408079%".
RMSE_FLOOR = 1e-3


@dataclass(frozen=True)
class Comparison:
    """What differed between parent and variant on ``rows`` holdout rows.

    ``defects`` are failures no bound can excuse (outputs of another shape or kind,
    NaN or infinity where the parent has none); ``rmse_floor`` is the smallest parent
    RMSE a relative increase is measured against.
    """

    rows: int
    label_agreement: float | None = None
    max_probability_diff: float | None = None
    max_scaled_prediction_diff: float | None = None
    parent_metrics: Mapping[str, float] = field(default_factory=dict)
    variant_metrics: Mapping[str, float] = field(default_factory=dict)
    defects: tuple[str, ...] = ()
    rmse_floor: float = 1e-12

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
        """The bounds this comparison breaks, each as a sentence; empty when it passes.

        A value that is not a finite number breaks its bound.
        """
        reasons: list[str] = list(self.defects)
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
        if _below(self.label_agreement, t.min_label_agreement):
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
            increase = (rmse[1] - rmse[0]) / max(rmse[0], self.rmse_floor)
            if _above(increase, t.max_rmse_increase):
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
            "defects": list(self.defects),
        }


def compare_outputs(
    parent: Outputs, variant: Outputs, labels: np.ndarray[Any, Any] | None = None
) -> Comparison:
    """Compare two models' outputs for the same rows (and score both when labels are given).

    Outputs of another shape or kind, or non-finite where the parent's are finite, make
    a comparison with ``defects`` (which :meth:`Comparison.check` reports) rather than
    an exception: the variant is rejected, the run goes on.
    """
    defects = _defects(parent, variant)
    if "label" in parent:
        expected = np.asarray(parent["label"])
        rows = len(expected)
        if defects:
            return Comparison(rows=rows, defects=defects)
        got = np.asarray(variant["label"])
        proba = None
        if "probabilities" in parent:
            proba = _max_gap(np.asarray(parent["probabilities"]), variant["probabilities"])
        scores: tuple[dict[str, float], dict[str, float]] = ({}, {})
        if labels is not None:
            truth = _labels(labels, rows, like=expected)
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
    if defects:
        return Comparison(rows=len(expected), defects=defects)
    got = np.asarray(variant["prediction"], dtype=np.float64)
    diff = _max_gap(expected, got, scale=_row_scale(expected))
    metrics: tuple[dict[str, float], dict[str, float]] = ({}, {})
    floor = 1e-12
    if labels is not None:
        truth = _labels(labels, len(expected), like=expected).astype(np.float64)
        metrics = (_regression(expected, truth), _regression(got, truth))
        rms = float(np.sqrt(np.mean(truth**2))) if truth.size else 0.0
        floor = RMSE_FLOOR * max(1.0, rms)
    return Comparison(
        rows=len(expected),
        max_scaled_prediction_diff=diff,
        parent_metrics=metrics[0],
        variant_metrics=metrics[1],
        rmse_floor=floor,
    )


def _defects(parent: Outputs, variant: Outputs) -> tuple[str, ...]:
    """Why the variant's outputs cannot be compared with the parent's, or are broken."""
    found: list[str] = []
    for name, value in parent.items():
        if name not in variant:
            found.append(f"the variant has no output {name!r}")
            continue
        want, got = np.asarray(value), np.asarray(variant[name])
        if want.shape != got.shape:
            found.append(
                f"output {name!r} has shape {list(got.shape)}, the parent's {list(want.shape)}"
            )
            continue
        if _kind(want) != _kind(got):
            found.append(f"output {name!r} is of dtype {got.dtype}, the parent's {want.dtype}")
            continue
        if got.dtype.kind in "fc":
            fresh = ~np.isfinite(got) & ~_same_nonfinite(want, got)
            if fresh.any():
                row = int(np.argwhere(fresh)[0][0])
                found.append(
                    f"output {name!r} holds {int(fresh.sum())} NaN or infinite value(s) where "
                    f"the parent's are finite, the first at row {row}"
                )
    return tuple(found)


def _kind(array: np.ndarray[Any, Any]) -> str:
    """Dtype family: numbers compare with numbers, text with text."""
    if array.dtype.kind in "biuf":
        return "number"
    return "text" if array.dtype.kind in "USO" else array.dtype.kind


def _same_nonfinite(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    same_inf = np.isinf(a) & (a == b)
    result: np.ndarray[Any, Any] = both_nan | same_inf
    return result


def _max_gap(
    expected: np.ndarray[Any, Any], got: Any, scale: np.ndarray[Any, Any] | None = None
) -> float:
    """Largest |expected - got| (divided by ``scale``), where equal non-finite values count
    as agreeing and any other non-finite difference makes the result infinite."""
    want = np.asarray(expected, dtype=np.float64)
    have = np.asarray(got, dtype=np.float64)
    if not want.size:
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        gap = np.abs(want - have)
    gap = np.where(_same_nonfinite(want, have), 0.0, gap)
    if scale is not None:
        gap = gap / scale
    if not np.isfinite(gap).all():
        return math.inf
    return float(gap.max())


def _row_scale(predictions: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    magnitude = np.abs(predictions)
    finite = magnitude[np.isfinite(magnitude)]
    typical = float(np.median(finite)) if finite.size else 1.0
    with np.errstate(invalid="ignore"):
        scale: np.ndarray[Any, Any] = np.maximum(np.fmax(magnitude, typical), 1.0)
    return scale


def _labels(
    labels: np.ndarray[Any, Any], rows: int, like: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    truth = np.asarray(labels)
    if truth.shape != like.shape or len(truth) != rows:
        raise OptimizeError(
            f"labels of shape {list(truth.shape)} for {rows} holdout rows answered with "
            f"shape {list(like.shape)}; pass one label per row, in order"
        )
    if _kind(truth) != _kind(like):
        raise OptimizeError(
            f"the labels are of dtype {truth.dtype}, the model answers {like.dtype}; pass "
            f"labels of the model's own kind (numbers or text)"
        )
    return truth


def _regression(predicted: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]) -> dict[str, float]:
    error = predicted - truth
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
    }


def _above(value: float | None, bound: float | None) -> bool:
    """True when ``value`` breaks an upper bound; NaN and infinity always do."""
    if value is None or bound is None:
        return False
    return not (math.isfinite(value) and value <= bound)


def _below(value: float | None, bound: float | None) -> bool:
    """True when ``value`` breaks a lower bound; NaN always does."""
    if value is None or bound is None:
        return False
    return not (math.isfinite(value) and value >= bound)
