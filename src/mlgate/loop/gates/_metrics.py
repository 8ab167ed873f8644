"""Holdout metrics by name: scikit-learn's definitions, plus vectorised bootstrap resamples.

Each metric is *prepared* once per model and holdout (:func:`prepare`): its point value
comes from ``sklearn.metrics``, and a resampler gives the same metric on many row
resamples at once (see ``_kernels``), so a paired bootstrap needs no Python loop.

Class labels are encoded as positions in one sorted *label universe* shared by the
candidate and the champion, so both are scored over the same classes; in binary tasks
the positive class is the larger label (``1`` over ``0``, ``"yes"`` over ``"no"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from sklearn.exceptions import UndefinedMetricWarning

from mlgate.errors import GateError
from mlgate.loop.gates import _kernels as k
from mlgate.loop.gates._kernels import MetricUndefinedError, Scored
from mlgate.loop.gates.inputs import Predictions, Task

__all__ = [
    "METRICS",
    "Metric",
    "MetricUndefinedError",
    "Scored",
    "correctness",
    "label_universe",
    "prediction_problem",
    "prepare",
]


class Metric(NamedTuple):
    """``score(y_true, predictions) -> float``, which way is better, and for which task."""

    score: Callable[[NDArray[Any], Predictions], float]
    higher_is_better: bool
    task: Task


def label_universe(y_true: NDArray[Any], *preds: Predictions | None) -> NDArray[Any]:
    """Sorted distinct labels of the truth and every model's predictions (missing ones left out)."""
    parts = [_present(y_true)] + [_present(p.labels) for p in preds if p is not None]
    kinds = {"num" if a.dtype.kind in "biuf" else a.dtype.kind for a in parts if len(a)}
    if "num" in kinds and kinds & {"U", "S"}:
        raise GateError("class labels mix numbers and text; predict labels of y_true's type")
    if "O" in kinds:
        parts = [a.astype(object) for a in parts]
    try:
        return np.unique(np.concatenate(parts))
    except TypeError as exc:
        raise GateError(f"class labels cannot be ordered ({exc}); use one label type") from None


def prepare(
    name: str, task: Task, y_true: NDArray[Any], pred: Predictions, universe: NDArray[Any] | None
) -> Scored:
    """Score ``pred`` on ``y_true``; :class:`MetricUndefinedError` when it has no value."""
    metric = METRICS[name]
    if metric.task != task:
        raise GateError(f"{name} is a {metric.task} metric but this loop's task is {task}")
    _require_labels(pred)
    if task == "regression":
        return _REGRESSION[name](np.asarray(y_true, np.float64), pred.labels.astype(np.float64))
    if universe is None:
        universe = label_universe(y_true, pred)
    if name in _BY_LABEL:
        y, p = _codes(y_true, universe), _codes(pred.labels, universe)
        return _BY_LABEL[name](y, p, len(universe))
    classes, proba = _probabilities(name, pred, universe)
    if not np.isin(y_true, classes).all():
        unknown = sorted({str(v) for v in np.asarray(y_true)[~np.isin(y_true, classes)]})
        raise MetricUndefinedError(
            f"{name}: the holdout has labels {unknown[:5]} the model gives no probability for"
        )
    return _BY_PROBA[name](_codes(y_true, classes), proba)


def correctness(
    y_true: NDArray[Any], pred: Predictions, universe: NDArray[Any]
) -> NDArray[np.bool_]:
    """Per row: did the model predict the true class? (What McNemar's test pairs up.)"""
    _require_labels(pred)
    return np.asarray(_codes(y_true, universe) == _codes(pred.labels, universe))


def prediction_problem(pred: Predictions) -> str | None:
    """What makes these predictions unusable whatever the metric (NaN labels or scores)."""
    missing = _missing(pred.labels)
    if missing:
        return f"{missing} of {len(pred.labels)} predictions are NaN, infinite or None"
    proba = pred.probabilities
    if proba is not None and not np.isfinite(np.asarray(proba, np.float64)).all():
        return "some class probabilities are NaN or infinite"
    return None


def _probabilities(
    name: str, pred: Predictions, universe: NDArray[Any]
) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """The model's classes, sorted, and its probability columns in that order, checked."""
    if pred.probabilities is None:
        raise MetricUndefinedError(
            f"{name} needs class probabilities and the model gave none; give "
            "Predictions.probabilities (predict_proba) or gate on a label metric"
        )
    proba = np.asarray(pred.probabilities, np.float64)
    classes = pred.classes if pred.classes is not None else universe
    if len(classes) != proba.shape[1]:
        raise MetricUndefinedError(
            f"{name}: {proba.shape[1]} probability columns but {len(classes)} known labels; "
            "give Predictions.classes (the model's classes_)"
        )
    if not np.isfinite(proba).all() or (proba < 0).any():
        raise MetricUndefinedError(
            f"{name}: probabilities contain NaN, infinite or negative values"
        )
    sums = proba.sum(axis=1)
    if not np.allclose(sums, 1.0, rtol=0, atol=1e-5):
        raise MetricUndefinedError(
            f"{name}: probability rows sum to {sums.min():g}..{sums.max():g}"
        )
    if name == "log_loss":
        # Rows from float32 models sum to 1 only within ~1e-7, which log_loss warns about;
        # rescale for it alone, since rescaling can split tied scores that roc_auc ranks.
        proba = proba / sums[:, None]
    order = np.argsort(classes, kind="stable")
    return np.asarray(classes)[order], proba[:, order]


def _codes(values: NDArray[Any], universe: NDArray[Any]) -> NDArray[np.intp]:
    """Position of each value in the sorted ``universe`` (every value must be in it)."""
    if values.dtype.kind == "O" or universe.dtype.kind == "O":
        lookup = {v: i for i, v in enumerate(universe.tolist())}
        return np.fromiter((lookup[v] for v in values.tolist()), np.intp, count=len(values))
    return np.searchsorted(universe, values).astype(np.intp)


def _require_labels(pred: Predictions) -> None:
    missing = _missing(pred.labels)
    if missing:
        n = len(pred.labels)
        raise MetricUndefinedError(f"{missing} of {n} predictions are NaN, infinite or None")


def _present(values: NDArray[Any]) -> NDArray[Any]:
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return np.asarray(values[np.isfinite(values)])
    if values.dtype.kind == "O":
        return np.array([v for v in values.tolist() if not _is_missing(v)], dtype=object)
    return values


def _missing(values: NDArray[Any]) -> int:
    return len(values) - len(_present(values))


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _guarded(name: str, fn: Callable[..., Scored]) -> Callable[..., Scored]:
    """Turn scikit-learn's undefined-metric warnings and value errors into a failed check."""

    def run(*args: Any) -> Scored:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UndefinedMetricWarning)
            try:
                scored = fn(*args)
            except (ValueError, UndefinedMetricWarning) as exc:
                raise MetricUndefinedError(f"{name} is undefined here: {exc}") from None
        if not np.isfinite(scored.value):
            raise MetricUndefinedError(f"{name} is not a finite number here ({scored.value})")
        return scored

    return run


_BY_LABEL = {
    name: _guarded(name, fn)
    for name, fn in (
        ("accuracy", k.accuracy),
        ("balanced_accuracy", k.balanced_accuracy),
        ("f1", k.f1),
    )
}
_BY_PROBA = {
    name: _guarded(name, fn)
    for name, fn in (("roc_auc", k.roc_auc), ("log_loss", k.log_loss), ("brier", k.brier))
}
_REGRESSION = {
    name: _guarded(name, fn) for name, fn in (("rmse", k.rmse), ("mae", k.mae), ("r2", k.r2))
}


def _public(name: str, task: Task) -> Callable[[NDArray[Any], Predictions], float]:
    def score(y_true: NDArray[Any], predictions: Predictions) -> float:
        return prepare(name, task, np.asarray(y_true), predictions, None).value

    score.__name__ = name
    return score


_TABLE: tuple[tuple[str, bool, Task], ...] = (
    ("accuracy", True, "classification"),
    ("balanced_accuracy", True, "classification"),
    ("f1", True, "classification"),
    ("roc_auc", True, "classification"),
    ("log_loss", False, "classification"),
    ("brier", False, "classification"),
    ("rmse", False, "regression"),
    ("mae", False, "regression"),
    ("r2", True, "regression"),
)
METRICS: Mapping[str, Metric] = MappingProxyType(
    {name: Metric(_public(name, task), higher, task) for name, higher, task in _TABLE}
)
"""Every metric a gate can name: ``name -> Metric(score, higher_is_better, task)``."""
