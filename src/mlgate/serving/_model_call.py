"""One model call for a batch: check the inputs, merge, predict, split, time it.

Runs in a worker thread (or inline on the loop, see :mod:`mlgate.serving.batcher`);
nothing here touches the event loop or the batcher's state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from mlgate.errors import InvalidRequestError, ModelFailedError

__all__ = ["Predict", "Tensor", "describe", "model_failed", "run_batch"]

Tensor = np.ndarray[Any, Any]
Predict = Callable[[dict[str, Tensor]], dict[str, Tensor]]


def describe(inputs: dict[str, Tensor]) -> tuple[int, Hashable]:
    """Row count and concatenation key of a request, or InvalidRequestError."""
    if not inputs:
        raise InvalidRequestError("request has no input tensors; expected at least one")
    rows = -1
    for name, array in inputs.items():
        if array.ndim == 0:
            raise InvalidRequestError(f"input {name!r} is a scalar; expected a batch dimension")
        if rows < 0:
            rows = array.shape[0]
        elif array.shape[0] != rows:
            raise InvalidRequestError(
                f"input {name!r} has {array.shape[0]} rows, another input has {rows}; "
                "all inputs need the same number of rows"
            )
    if rows == 0:
        raise InvalidRequestError("request has 0 rows; expected at least one")
    key = tuple(sorted((name, array.dtype.str, array.shape[1:]) for name, array in inputs.items()))
    return rows, key


def run_batch(
    predict: Predict,
    inputs: list[dict[str, Tensor]],
    rows: list[int],
    began: list[float] | None = None,
) -> list[dict[str, Tensor] | ModelFailedError]:
    """Merge, predict and split in the worker thread, off the event loop.

    ``began`` gets the time the call really started: a call that waited for a thread
    (or for the GIL, on a loaded machine) is slow because of load, not because of the
    model, and circuit breakers must tell the two apart.

    If a merged call fails, one request may have poisoned it (a row the model
    cannot handle): each request is then answered alone, so only the culprit
    fails and the requests that merely shared its batch still get their answer.
    """
    if began is not None:
        began.append(time.monotonic())
    try:
        return _run_batch_timed(predict, inputs, rows)
    finally:
        if began is not None:  # [start, end]: the call itself, without hops or loop delay
            began.append(time.monotonic())


def _run_batch_timed(
    predict: Predict, inputs: list[dict[str, Tensor]], rows: list[int]
) -> list[dict[str, Tensor] | ModelFailedError]:
    try:
        return list(_run_merged(predict, inputs, rows))
    except ModelFailedError as error:
        if len(inputs) == 1:
            return [error]
    outcomes: list[dict[str, Tensor] | ModelFailedError] = []
    for single, count in zip(inputs, rows, strict=True):
        try:
            outcomes.append(_run_merged(predict, [single], [count])[0])
        except ModelFailedError as exc:
            outcomes.append(exc)
    return outcomes


def _run_merged(
    predict: Predict, inputs: list[dict[str, Tensor]], rows: list[int]
) -> list[dict[str, Tensor]]:
    if len(inputs) == 1:
        merged = inputs[0]
    else:
        merged = {name: np.concatenate([i[name] for i in inputs], axis=0) for name in inputs[0]}
    try:
        outputs = predict(merged)
    except Exception as exc:
        raise ModelFailedError(f"model failed: {type(exc).__name__}: {exc}") from exc
    total = sum(rows)
    if not isinstance(outputs, dict):
        raise ModelFailedError(f"model returned {type(outputs).__name__}; expected a dict")
    for name, array in outputs.items():
        if not isinstance(array, np.ndarray) or array.ndim == 0 or array.shape[0] != total:
            found = getattr(array, "shape", type(array).__name__)
            raise ModelFailedError(
                f"model output {name!r} cannot be split into the batch's requests: "
                f"expected {total} rows, found {found}"
            )
    if len(rows) == 1:
        return [outputs]
    offsets = np.cumsum(rows[:-1])
    parts = {name: np.split(array, offsets) for name, array in outputs.items()}
    return [{name: parts[name][i] for name in parts} for i in range(len(rows))]


def model_failed(error: BaseException) -> ModelFailedError:
    """A fresh ModelFailedError per waiter; ours are copied, anything else is wrapped."""
    if isinstance(error, ModelFailedError):
        fresh = ModelFailedError(str(error))
        fresh.__cause__ = error.__cause__
        return fresh
    fresh = ModelFailedError(f"model failed: {type(error).__name__}: {error}")
    fresh.__cause__ = error
    return fresh
