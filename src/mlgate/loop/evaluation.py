"""What the gates see: both models' answers on the same holdout, timed and sized.

The candidate is loaded from the bytes the trainer produced (through its flavor, exactly as
the server would load it after registration), the champion from the registry (hash
checked). Both answer the same holdout rows, so every comparison is paired.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlgate.errors import GateError, MlgateError
from mlgate.loop.frame import TrainingFrame
from mlgate.loop.gates import GateInputs, Predictions
from mlgate.registry.flavors.base import LoadedModel
from mlgate.registry.signature import Signature

__all__ = ["LATENCY_ROWS", "gate_inputs", "predictions_of", "single_row_latencies"]

LATENCY_ROWS = 50  # single-row calls timed per model: enough for a stable p99 of a budget


def predictions_of(model: LoadedModel, matrix: NDArray[np.float64]) -> Predictions:
    """The model's labels (or values) and, for classifiers, probabilities with their classes."""
    name = model.signature.inputs[0].name
    try:
        outputs = model.predict({name: matrix})
    except MlgateError:
        raise
    except Exception as exc:  # a model is user code: any failure is a failed prediction
        raise GateError(f"the model failed on the holdout: {type(exc).__name__}: {exc}") from None
    if "label" in outputs:
        labels = np.asarray(outputs["label"]).reshape(-1)
        probabilities = outputs.get("probabilities")
        return Predictions(
            labels=labels,
            probabilities=None if probabilities is None else np.asarray(probabilities),
        )
    first = outputs.get("prediction", next(iter(outputs.values())))
    return Predictions(labels=np.asarray(first, dtype=np.float64).reshape(len(matrix), -1)[:, 0])


def single_row_latencies(model: LoadedModel, matrix: NDArray[np.float64]) -> list[float]:
    """Milliseconds per single-row call, as the server calls a model for a lone request."""
    name = model.signature.inputs[0].name
    rows = matrix[: min(LATENCY_ROWS, len(matrix))]
    if len(rows):
        model.predict({name: rows[:1]})  # warm-up: first calls pay for lazy initialisation
    times: list[float] = []
    for i in range(len(rows)):
        start = time.perf_counter()
        model.predict({name: rows[i : i + 1]})
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def gate_inputs(
    *,
    task: str,
    holdout: TrainingFrame,
    classes: NDArray[Any] | None,
    candidate: LoadedModel,
    champion: LoadedModel | None,
    candidate_size: int,
    endpoint_signature: Signature | None,
    slice_columns: Sequence[str],
) -> GateInputs:
    matrix = holdout.matrix()
    cand = predictions_of(candidate, matrix)
    champ = None if champion is None else predictions_of(champion, matrix)
    if classes is not None:
        cand = _with_classes(cand, classes)
        champ = None if champ is None else _with_classes(champ, classes)
    slices: Mapping[str, NDArray[Any]] = {
        name: np.asarray(holdout.columns[name]) for name in slice_columns if name in holdout.columns
    }
    return GateInputs(
        task="regression" if task == "regression" else "classification",
        y_true=np.asarray(holdout.labels),
        candidate=cand,
        champion=champ,
        slices=slices,
        candidate_latency_ms=single_row_latencies(candidate, matrix),
        champion_latency_ms=() if champion is None else single_row_latencies(champion, matrix),
        candidate_size_bytes=candidate_size,
        candidate_signature=candidate.signature,
        endpoint_signature=endpoint_signature,
    )


def _with_classes(predictions: Predictions, classes: NDArray[Any]) -> Predictions:
    probabilities = predictions.probabilities
    if probabilities is None or probabilities.ndim != 2 or probabilities.shape[1] != len(classes):
        return Predictions(labels=predictions.labels)
    return Predictions(
        labels=predictions.labels, probabilities=probabilities, classes=np.asarray(classes)
    )
