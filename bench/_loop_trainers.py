"""Deliberately bad trainers the loop benchmark names as ``bench._loop_trainers:NAME``.

Each is code an operator could ship by mistake; the loop runs it in its training child
process (so it must import from a fresh interpreter started in the repository root). The
data they get is clean: what makes the candidate worse is the code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from mlgate.loop.frame import TrainingFrame

__all__ = ["DROPPED", "fit_shuffled_labels", "fit_without_feature", "fit_zeroed_feature"]

DROPPED = "x2"  # weight -1 in the world before the drift: a feature that matters


def _labels(frame: TrainingFrame) -> np.ndarray[Any, Any]:
    return np.asarray(frame.labels.tolist(), dtype=np.int64)


def fit_shuffled_labels(frame: TrainingFrame, params: dict[str, Any]) -> LogisticRegression:
    """Labels shuffled against their rows (a join on the wrong key): it learns nothing."""
    shuffled = np.random.default_rng(int(params.get("seed", 0))).permutation(_labels(frame))
    return LogisticRegression().fit(frame.matrix(), shuffled)


def fit_without_feature(frame: TrainingFrame, params: dict[str, Any]) -> LogisticRegression:
    """Trained on 5 of the 6 features: its input no longer fits the endpoint's."""
    keep = [i for i, name in enumerate(frame.features) if name != DROPPED]
    return LogisticRegression().fit(frame.matrix()[:, keep], _labels(frame))


def fit_zeroed_feature(frame: TrainingFrame, params: dict[str, Any]) -> LogisticRegression:
    """Trained with one feature blanked to 0 (a broken upstream column): the input still
    fits the endpoint's, but the model cannot use that feature."""
    matrix = frame.matrix().copy()
    matrix[:, frame.features.index(DROPPED)] = 0.0
    return LogisticRegression().fit(matrix, _labels(frame))
