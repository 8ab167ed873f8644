"""Tiny scikit-learn models trained at test time, and a workspace on SQLite only.

The models are small enough to train in well under a second, yet of the kinds the issue
names: an MLP (128, 64), a HistGradientBoosting classifier (with missing values in its
training data, so the converted trees must route NaN like sklearn does), a Ridge
regressor. Data are two well-separated classes so that int8 variants keep the labels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlgate.optimize import MeasureConfig
from mlgate.registry.records import ModelVersion
from mlgate.workspace import Workspace
from tests.models import ACTOR

FAST = MeasureConfig(warmup=2, single_row_repeats=10, batch_repeats=2, budget_s=0.5)
WIDTH = 8


@dataclass(frozen=True)
class Trained:
    estimator: Any
    x: np.ndarray[Any, Any]
    y: np.ndarray[Any, Any]


def _data(seed: int, rows: int = 600) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=rows)
    x = rng.normal(size=(rows, WIDTH)) + np.where(y[:, None] == 1, 1.5, -1.5) * (
        np.arange(WIDTH) < 3
    )
    return x, y


@pytest.fixture(scope="session")
def mlp() -> Trained:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x, y = _data(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 30 epochs are plenty here
        model = MLPClassifier((128, 64), max_iter=30, random_state=0).fit(x, y)
    return Trained(model, x, y)


@pytest.fixture(scope="session")
def hgb() -> Trained:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = _data(1)
    train = x.copy()
    train[::9, 0] = np.nan  # trees learn where missing values go
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(train, y)
    return Trained(model, x, y)


@pytest.fixture(scope="session")
def ridge() -> Trained:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, WIDTH))
    y = x @ np.linspace(-3, 3, WIDTH) * 40 + 7 + rng.normal(size=300)
    return Trained(Ridge(alpha=0.1).fit(x, y), x, y)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """SQLite only: the optimizer's storage is the registry's, tested on both elsewhere."""
    return f"sqlite:///{tmp_path / 'store' / 'mlgate.db'}"


def register_sklearn(workspace: Workspace, name: str, estimator: Any) -> ModelVersion:
    import skops.io

    data = skops.io.dumps(estimator)
    trusted = sorted(skops.io.get_untrusted_types(data=data))
    return workspace.registry.register(name, data, actor=ACTOR, trusted_types=trusted)


def run_optimize(workspace: Workspace, trained: Trained, **kwargs: Any) -> Any:
    """optimize_version on model "m" v1 with the trained model's rows and fast timings."""
    from mlgate.optimize import optimize_version

    options: dict[str, Any] = {
        "holdout": trained.x,
        "labels": trained.y,
        "actor": ACTOR,
        "measure": FAST,
    }
    options.update(kwargs)
    return optimize_version(workspace, "m", 1, **options)


def rows_by_kind(report: Any) -> dict[str, dict[str, Any]]:
    """The report's variant rows keyed by kind."""
    return {row["kind"]: row for row in report.to_json()["variants"]}
