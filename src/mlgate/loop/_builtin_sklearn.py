"""The built-in trainer, ``trainer: builtin:sklearn``: an allow-listed scikit-learn estimator.

The estimator is built from the YAML alone: its constructor takes ``params``, its
``random_state`` the loop's ``seed`` unless the params set one, and ``scale: true`` puts
a ``StandardScaler`` in front. scikit-learn is imported only when a class is asked for,
which happens in the training child (:mod:`mlgate.loop._train_child`), so parsing a
loop file does not need it.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from mlgate.errors import LoopConfigError
from mlgate.loop.frame import TrainingFrame
from mlgate.registry.records import JSONScalar

if TYPE_CHECKING:
    from mlgate.loop.trainer import TrainerSpec

__all__ = ["ESTIMATORS", "builtin_params", "estimator_class", "fit_builtin"]

# Estimator class name -> the public scikit-learn module that exports it. A fixed list,
# not "any class in sklearn", so a loop file cannot instantiate arbitrary classes.
ESTIMATORS: Mapping[str, str] = {
    "LogisticRegression": "sklearn.linear_model",
    "RidgeClassifier": "sklearn.linear_model",
    "RandomForestClassifier": "sklearn.ensemble",
    "GradientBoostingClassifier": "sklearn.ensemble",
    "HistGradientBoostingClassifier": "sklearn.ensemble",
    "LinearRegression": "sklearn.linear_model",
    "Ridge": "sklearn.linear_model",
    "RandomForestRegressor": "sklearn.ensemble",
    "GradientBoostingRegressor": "sklearn.ensemble",
    "HistGradientBoostingRegressor": "sklearn.ensemble",
}


def estimator_class(name: str | None) -> Any:
    """The allow-listed scikit-learn class called ``name`` (importing its module)."""
    if name is None or name not in ESTIMATORS:
        raise LoopConfigError(
            f"unknown built-in estimator {name!r}; expected one of {', '.join(ESTIMATORS)}"
        )
    return getattr(importlib.import_module(ESTIMATORS[name]), name)


def fit_builtin(spec: TrainerSpec, frame: TrainingFrame) -> Any:
    """Fit the built-in estimator on the frame's features and labels.

    Bad ``params`` raise here, in scikit-learn's words (an unknown name at construction,
    a bad value at fit), and reach the user as the trainer's error.
    """
    estimator = estimator_class(spec.estimator)(**spec.params)
    if "random_state" in estimator.get_params() and "random_state" not in spec.params:
        estimator.set_params(random_state=spec.seed)
    if spec.scale:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        estimator = make_pipeline(StandardScaler(), estimator)
    estimator.fit(frame.matrix(), _labels(frame.labels))
    return estimator


def builtin_params(spec: TrainerSpec, estimator: Any) -> dict[str, JSONScalar]:
    """The hyperparameters the fitted built-in model used: its JSON-scalar ``get_params``."""
    final = estimator.steps[-1][1] if spec.scale else estimator
    used: dict[str, JSONScalar] = {}
    for key, value in final.get_params(deep=False).items():
        plain = value.item() if isinstance(value, np.generic) else value
        if plain is None or isinstance(plain, str | bool | int):
            used[key] = plain
        elif isinstance(plain, float) and math.isfinite(plain):
            used[key] = plain
    used["estimator"] = spec.estimator
    if spec.scale:
        used["scale"] = True
    return used


def _labels(labels: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Object labels (as read from JSON) retyped, since sklearn rejects object ints."""
    return np.asarray(labels.tolist()) if labels.dtype == object else labels
