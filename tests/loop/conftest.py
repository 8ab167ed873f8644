"""Loop fixtures: a champion trained on the synthetic world, deployed; loop files as dicts."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from skops.io import dumps

from mlgate.loop.config import LoopConfig, parse_loop_config
from mlgate.loop.synthetic import FEATURES, SyntheticWorld
from mlgate.serving.endpoints import EndpointStore
from mlgate.serving.spec import parse_endpoint_yaml
from mlgate.workspace import Workspace
from tests.serving.conftest import serve  # noqa: F401  (the real-server fixture)

ENDPOINT = "risk"

BASE_LOOP: dict[str, Any] = {
    "name": "risk-loop",
    "endpoint": ENDPOINT,
    "task": "classification",
    "features": list(FEATURES),
    "source": {"kind": "memory"},
    "monitor": {"window": 200},
    "triggers": {"on": ["drift", "performance", "manual"], "confirm": 1, "cooldown_s": 0},
    "training": {
        "trainer": "builtin:sklearn",
        "estimator": "LogisticRegression",
        "window": {"recent": 600},
        "min_rows": 300,
        "holdout": 0.3,
        "time_budget_s": 60,
    },
    "gates": {
        "all_of": [
            {"metric": {"name": "accuracy", "min": 0.7}},
            {"vs_champion": {"metric": "accuracy", "min_delta": 0.02}},
            {"significance": {"metric": "accuracy", "test": "mcnemar", "alpha": 0.01}},
            {"signature": {}},
        ]
    },
    "promotion": {"steps": [10, 50, 100], "interval_s": 1, "min_samples": 20},
}


def loop_config(*, replace: tuple[str, ...] = (), **overrides: Any) -> LoopConfig:
    """The base loop file with top-level sections merged (dicts) or replaced (``replace``)."""
    data = copy.deepcopy(BASE_LOOP)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict) and key not in replace:
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_loop_config(data, base=Path("."))


def deploy_champion(workspace: Workspace, *, seed: int = 3) -> int:
    x, y = SyntheticWorld(seed=seed).rows(2000, "before")
    model = LogisticRegression().fit(x, y)
    version = workspace.registry.register(ENDPOINT, dumps(model), actor="test:loop")
    workspace.registry.move_alias(ENDPOINT, "champion", version.version, actor="test:loop")
    spec = parse_endpoint_yaml(f"name: {ENDPOINT}\nroute: champion\n")
    EndpointStore(workspace.store, workspace.registry, workspace.log, workspace.clock).deploy(
        spec, actor="test:loop"
    )
    return version.version


@pytest.fixture
def champion(workspace: Workspace) -> int:
    return deploy_champion(workspace)


def records(
    world: SyntheticWorld, n: int, which: str, *, start: int, poison: float = 0.0
) -> list[dict[str, Any]]:
    """Flat labelled records as any source delivers them."""
    x, y = world.rows(n, which, poison=poison)  # type: ignore[arg-type]
    return [
        {
            "request_id": f"r{start + i}",
            **dict(zip(FEATURES, map(float, row), strict=True)),
            "label": int(label),
        }
        for i, (row, label) in enumerate(zip(x, y, strict=True))
    ]


__all__ = ["BASE_LOOP", "ENDPOINT", "deploy_champion", "loop_config", "np", "records"]
