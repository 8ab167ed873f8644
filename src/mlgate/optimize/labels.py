"""True labels for a holdout, checked against the parent before anything is built.

Labels that cannot be scored against the model's answers would make a metric check
vacuous (text labels against integer classes give accuracy 0 on both sides, so no
accuracy drop is ever seen) or crash late (text targets for a regressor). So, up front:
one label per holdout row, 1-D (an ``[N, 1]`` column is accepted and flattened); numbers
for a regressor; for a classifier, labels of the classes' own kind (numbers or text), at
least :data:`MIN_KNOWN_SHARE` of them among the parent's classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlgate.errors import OptimizeError

__all__ = ["MIN_KNOWN_SHARE", "check_labels"]

# A holdout may hold a class the model never saw; mostly unknown labels mean a wrong column.
MIN_KNOWN_SHARE = 0.5


def check_labels(
    labels: Any, rows: int, *, classes: Sequence[Any] | np.ndarray[Any, Any] | None
) -> np.ndarray[Any, Any]:
    """``labels`` as a 1-D array of ``rows`` labels fit to score the parent, or OptimizeError.

    ``classes`` are the parent classifier's classes, or None for a regressor.
    """
    truth = np.asarray(labels)
    if truth.ndim == 2 and truth.shape[1] == 1:
        truth = truth[:, 0]
    if truth.ndim != 1 or len(truth) != rows:
        raise OptimizeError(
            f"the labels have shape {list(truth.shape)}; expected one per holdout row, "
            f"[{rows}]. Multi-output targets are not supported; pass one label column."
        )
    if classes is None:
        return _numeric(truth)
    known = np.asarray(classes)
    if _is_number(known) != _is_number(truth):
        raise OptimizeError(
            f"the labels are {_describe(truth)} but the model's classes are "
            f"{_describe(known)} ({_show(known)}); pass the label column the model was "
            f"trained on"
        )
    if truth.dtype.kind == "O" and _is_number(truth):
        truth = truth.astype(np.float64)
    member = np.isin(truth, known)
    if rows and member.mean() < MIN_KNOWN_SHARE:
        unknown = list(dict.fromkeys(truth[~member].tolist()))[:5]
        raise OptimizeError(
            f"only {member.mean():.0%} of the labels are among the model's classes "
            f"({_show(known)}); unknown values include {unknown}. Pass the label column the "
            f"model was trained on (at least {MIN_KNOWN_SHARE:.0%} known)."
        )
    return truth


def _numeric(truth: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if not _is_number(truth):
        raise OptimizeError(
            f"the labels are {_describe(truth)} (e.g. {truth[:3].tolist()}); a regressor "
            f"needs numeric targets. Pass the numeric target column."
        )
    values = truth.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise OptimizeError(
            f"{int(bad.sum())} label(s) are NaN or infinite, the first at row "
            f"{int(np.argmax(bad))}; drop or fill those rows"
        )
    return values


def _is_number(array: np.ndarray[Any, Any]) -> bool:
    if array.dtype.kind in "biuf":
        return True
    if array.dtype.kind == "O":
        return all(
            isinstance(v, int | float | np.number) and not isinstance(v, str)
            for v in array.tolist()
        )
    return False


def _describe(array: np.ndarray[Any, Any]) -> str:
    return "numbers" if _is_number(array) else f"text ({array.dtype})"


def _show(classes: np.ndarray[Any, Any]) -> str:
    values = classes.tolist()
    return f"{values[:10]}{'...' if len(values) > 10 else ''}"
