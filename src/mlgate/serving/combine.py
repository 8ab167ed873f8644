"""Combining the answers of several versions: ensembles and cascade confidence.

Pure numpy over the output tensors of each target, in the order the spec lists
the targets. A target whose output lacks the combined tensor, or gives it in a
different shape from the others, makes the ensemble itself unworkable, so that
is a :class:`PolicyError` naming the target, not a failure of one model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mlgate.errors import PolicyError

__all__ = ["combine_majority", "combine_mean", "combine_weighted_mean", "confidence"]

Outputs = Sequence[Mapping[str, npt.ArrayLike]]


def combine_mean(
    outputs: Outputs,
    key: str = "probabilities",
    *,
    classes: npt.ArrayLike | None = None,
    label_key: str | None = "label",
    targets: Sequence[int | str] | None = None,
) -> dict[str, np.ndarray]:
    """Average ``key`` over targets; for rows x classes also the argmax ``label``.

    The label is the column index as int64, or ``classes[index]`` when the
    class labels are known. Pass ``label_key=None`` for regressions.
    """
    stacked = _stack_numeric(outputs, key, targets)
    return _with_label(stacked.mean(axis=0), key, classes, label_key)


def combine_weighted_mean(
    outputs: Outputs,
    weights: Sequence[float],
    key: str = "probabilities",
    *,
    classes: npt.ArrayLike | None = None,
    label_key: str | None = "label",
    targets: Sequence[int | str] | None = None,
) -> dict[str, np.ndarray]:
    """Like :func:`combine_mean`, each target's array counting ``weight / sum(weights)``."""
    stacked = _stack_numeric(outputs, key, targets)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (stacked.shape[0],):
        raise PolicyError(
            f"weighted mean needs one weight per target: {stacked.shape[0]} targets, "
            f"{w.size} weights"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise PolicyError(f"ensemble weights must be finite, >= 0, one above 0; found {w.tolist()}")
    mean = np.tensordot(w / w.sum(), stacked, axes=1)
    return _with_label(mean, key, classes, label_key)


def combine_majority(
    outputs: Outputs,
    key: str = "label",
    *,
    targets: Sequence[int | str] | None = None,
) -> dict[str, np.ndarray]:
    """Per-element majority vote over the targets' ``key`` arrays.

    A tie goes to the tied answer given by the earliest target in spec order,
    so listing the trusted champion first makes it the tie-breaker.
    """
    stacked = _stack(outputs, key, targets)
    # votes[i, ...] = how many targets agree with target i; argmax keeps the first maximum.
    votes = (stacked[:, None, ...] == stacked[None, :, ...]).sum(axis=1)
    winner = votes.argmax(axis=0)
    return {key: np.take_along_axis(stacked, winner[None, ...], axis=0)[0]}


def confidence(output: Mapping[str, npt.ArrayLike], key: str = "probabilities") -> np.ndarray:
    """Per-row confidence of one target's answer, for a cascade's ``min_confidence``.

    Rows x classes gives each row's largest probability. A 1-D array is read as
    a binary classifier's positive-class probability p, so confidence is max(p, 1 - p).
    """
    if key not in output:
        raise PolicyError(f"a cascade stage must output {key!r}; found {sorted(output)}")
    array = np.asarray(output[key], dtype=np.float64)
    if array.ndim == 1:
        return np.maximum(array, 1.0 - array)
    if array.ndim == 2 and array.shape[1] > 0:
        return np.asarray(array.max(axis=1))
    raise PolicyError(
        f"cascade confidence needs {key!r} as rows or rows x classes; found shape {array.shape}"
    )


def _name(targets: Sequence[int | str] | None, index: int) -> str:
    if targets is None or index >= len(targets):
        return f"target #{index}"
    target = targets[index]
    return f"version {target}" if isinstance(target, int) else f"target {target!r}"


def _stack(outputs: Outputs, key: str, targets: Sequence[int | str] | None) -> np.ndarray:
    if not outputs:
        raise PolicyError("an ensemble needs the outputs of at least one target")
    arrays: list[np.ndarray] = []
    for index, output in enumerate(outputs):
        if key not in output:
            raise PolicyError(
                f"ensemble needs every target to output {key!r}; {_name(targets, index)} "
                f"gave only {sorted(output)}"
            )
        array = np.asarray(output[key])
        if arrays and array.shape != arrays[0].shape:
            raise PolicyError(
                f"ensemble needs every target to output {key!r} with the same shape; "
                f"{_name(targets, 0)} gave {arrays[0].shape}, "
                f"{_name(targets, index)} gave {array.shape}"
            )
        if arrays and _is_number(array) != _is_number(arrays[0]):
            raise PolicyError(
                f"ensemble needs every target to output {key!r} of one kind; "
                f"{_name(targets, 0)} gave {arrays[0].dtype}, {_name(targets, index)} gave "
                f"{array.dtype}"
            )
        arrays.append(array)
    return np.stack(arrays)


def _is_number(array: np.ndarray) -> bool:
    return array.dtype.kind in "biuf"


def _stack_numeric(outputs: Outputs, key: str, targets: Sequence[int | str] | None) -> np.ndarray:
    stacked = _stack(outputs, key, targets)
    if not _is_number(stacked):
        raise PolicyError(f"ensemble can only average numbers; {key!r} is {stacked.dtype}")
    return stacked.astype(np.float64, copy=False)


def _with_label(
    mean: np.ndarray, key: str, classes: npt.ArrayLike | None, label_key: str | None
) -> dict[str, np.ndarray]:
    combined: dict[str, Any] = {key: mean}
    if label_key is not None and mean.ndim == 2 and mean.shape[1] > 0:
        index = mean.argmax(axis=1).astype(np.int64)
        if classes is None:
            combined[label_key] = index
        else:
            labels = np.asarray(classes)
            if labels.shape != (mean.shape[1],):
                raise PolicyError(
                    f"{key!r} has {mean.shape[1]} columns but {labels.size} class labels "
                    "were given; give one label per column"
                )
            combined[label_key] = labels[index]
    return combined
