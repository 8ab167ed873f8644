"""What a gate judges: the holdout's truth, both models' predictions and their measurements.

Inputs are validated when they are built, so that a holdout that cannot be judged at
all (rows that do not line up, no rows, missing truth) is a :class:`GateError` at once
and never a quietly failed or, worse, quietly passed check. Predictions that are merely
bad (NaN scores) are not structural: the checks that read them fail and say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from mlgate.errors import GateError
from mlgate.registry.signature import Signature

__all__ = ["GateInputs", "Predictions", "Task"]

Task = Literal["classification", "regression"]
_TASKS: tuple[str, ...] = ("classification", "regression")


@dataclass(frozen=True, eq=False)  # holds arrays, whose == is elementwise
class Predictions:
    """One model's answers on the holdout rows.

    ``labels`` is the predicted class (classification) or value (regression) per row;
    ``probabilities`` is ``[n, n_classes]`` with columns in ``classes`` order (when
    ``classes`` is None the columns are taken to be the sorted labels, as scikit-learn
    orders ``predict_proba``).
    """

    labels: NDArray[Any]
    probabilities: NDArray[Any] | None = None
    classes: NDArray[Any] | None = None

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if labels.ndim != 1:
            raise GateError(
                f"prediction labels must be one value per row (1-D), found shape "
                f"{labels.shape}; pass model.predict(X) flattened"
            )
        object.__setattr__(self, "labels", labels)
        if self.probabilities is not None:
            proba = np.asarray(self.probabilities)
            if proba.ndim != 2 or proba.shape[0] != len(labels) or proba.dtype.kind not in "iuf":
                raise GateError(
                    f"probabilities must be a numeric [rows, classes] array with one row per "
                    f"label ({len(labels)}), found {proba.dtype} of shape {proba.shape}"
                )
            object.__setattr__(self, "probabilities", proba)
        if self.classes is not None:
            classes = np.asarray(self.classes)
            width = None if self.probabilities is None else self.probabilities.shape[1]
            if classes.ndim != 1 or (width is not None and len(classes) != width):
                raise GateError(
                    f"classes must name each probability column once (1-D, {width} values), "
                    f"found shape {classes.shape}; pass the model's classes_"
                )
            if len(set(classes.tolist())) != len(classes):
                raise GateError(f"classes must be distinct, found {classes.tolist()}")
            object.__setattr__(self, "classes", classes)

    def take(self, rows: NDArray[np.intp]) -> Predictions:
        """The predictions for ``rows`` only (a slice of the holdout)."""
        proba = None if self.probabilities is None else self.probabilities[rows]
        return Predictions(self.labels[rows], proba, self.classes)


@dataclass(frozen=True, eq=False)  # holds arrays, whose == is elementwise
class GateInputs:
    """Everything a gate may look at; checks that need a missing part fail or skip.

    ``champion`` is None before the first promotion: checks against it then pass as
    "no champion to compare with". ``slices`` maps a segment column (say ``country``)
    to one value per holdout row. Latencies are single-row times in milliseconds.
    ``endpoint_signature`` is what the endpoint serves now.
    """

    task: Task
    y_true: NDArray[Any]
    candidate: Predictions
    champion: Predictions | None = None
    slices: Mapping[str, NDArray[Any]] = field(default_factory=dict)
    candidate_latency_ms: Sequence[float] = ()
    champion_latency_ms: Sequence[float] = ()
    candidate_size_bytes: int | None = None
    candidate_signature: Signature | None = None
    endpoint_signature: Signature | None = None

    def __post_init__(self) -> None:
        if self.task not in _TASKS:
            raise GateError(f"task must be one of {list(_TASKS)}, found {self.task!r}")
        y_true = np.asarray(self.y_true)
        if y_true.ndim != 1 or len(y_true) == 0:
            raise GateError(
                f"the holdout needs at least one labelled row (1-D y_true), found shape "
                f"{y_true.shape}; hold out some labelled rows before gating"
            )
        if self.task == "regression" and y_true.dtype.kind not in "iuf":
            raise GateError(f"a regression holdout needs numeric y_true, found {y_true.dtype}")
        missing = _missing(y_true)
        if missing:
            raise GateError(
                f"y_true has {missing} missing (NaN, None or infinite) values of {len(y_true)}; "
                "drop unlabelled rows from the holdout"
            )
        object.__setattr__(self, "y_true", y_true)
        for role, pred in (("candidate", self.candidate), ("champion", self.champion)):
            if pred is None:
                continue
            if not isinstance(pred, Predictions):
                raise GateError(f"{role} must be Predictions, found {type(pred).__name__}")
            if len(pred.labels) != len(y_true):
                raise GateError(
                    f"{role} has {len(pred.labels)} predictions for {len(y_true)} holdout "
                    "rows; predict every holdout row, in order"
                )
            if self.task == "regression" and pred.labels.dtype.kind not in "iuf":
                raise GateError(
                    f"{role} regression predictions must be numeric, found {pred.labels.dtype}"
                )
        slices = {str(name): np.asarray(column) for name, column in self.slices.items()}
        for name, column in slices.items():
            if column.shape != y_true.shape:
                raise GateError(
                    f"slice column {name!r} has shape {column.shape} for {len(y_true)} holdout "
                    "rows; give one segment value per row"
                )
        object.__setattr__(self, "slices", slices)
        size = self.candidate_size_bytes
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise GateError(f"candidate_size_bytes must be an integer >= 0, found {size!r}")
        for name in ("candidate_signature", "endpoint_signature"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Signature):
                raise GateError(f"{name} must be a Signature, found {type(value).__name__}")

    @property
    def n_rows(self) -> int:
        return len(self.y_true)


def _missing(values: NDArray[Any]) -> int:
    """Count NaN or infinite (float arrays) or None/NaN (object arrays) entries."""
    if values.dtype.kind == "f":
        return int(np.count_nonzero(~np.isfinite(values)))
    if values.dtype.kind == "O":
        return sum(1 for v in values.tolist() if v is None or (isinstance(v, float) and v != v))
    return 0
