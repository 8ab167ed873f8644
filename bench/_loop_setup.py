"""What every part of the loop benchmark shares: one fresh workspace per scenario, a
champion, the loop file, records as a source delivers them, and the truth to judge by.

A scenario is one seed. Its :class:`~mlgate.loop.synthetic.SyntheticWorld` draws first the
champion's 2,000 training rows, then every record the loop sees, so a scenario replays
exactly. The loop file is the one the loop's own tests use (``tests/loop/conftest.py``),
with ``confirm: 1`` and no cooldown: every alarm may start a run, and the table shows what
each alarm cost.
"""

from __future__ import annotations

import copy
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlgate.config import Settings
from mlgate.loop.config import LoopConfig, parse_loop_config
from mlgate.loop.runs import LoopRun, RunState
from mlgate.loop.synthetic import FEATURES, SyntheticWorld, World
from mlgate.registry.flavors.base import LoadedModel
from mlgate.workspace import Workspace

__all__ = [
    "ACTOR",
    "BASE_LOOP",
    "CHUNK",
    "ENDPOINT",
    "GATE_PASSED",
    "LIVE_PROMOTION",
    "RATE",
    "RecordClock",
    "TRUTH_ROWS",
    "accuracy",
    "as_records",
    "candidate_model",
    "deploy_champion",
    "function_trainer",
    "loop_config",
    "onset_of",
    "say",
    "scenario_workspace",
    "spread",
    "truth",
]

ENDPOINT = "risk"
ACTOR = "bench:loop"
CHUNK = 50  # records ingested per runner step
TRUTH_ROWS = 5000  # fresh rows on which candidates and champions are judged afterwards
ONSET_MIN, ONSET_SPAN = 600, 200  # drift starts at a seeded record in [600, 800)
RATE = 50.0  # records a second on a scenario's own clock

BASE_LOOP: dict[str, Any] = {
    "name": "risk-loop",
    "endpoint": ENDPOINT,
    "task": "classification",
    "features": list(FEATURES),
    "source": {"kind": "memory"},
    "monitor": {"window": 200, "detector": "adwin"},
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

# The canary's metrics on live traffic: what the demo judges by (errors, and the reward
# the feedback carries: was the served answer right).
LIVE_PROMOTION: dict[str, Any] = {
    "steps": [10, 50, 100],
    "interval_s": 1,
    "min_samples": 20,
    "metrics": [
        {
            "name": "error_rate",
            "source": "error_rate",
            "harm": "increase",
            "tolerance": 0.1,
            "critical": True,
        },
        {"name": "reward", "source": "reward", "harm": "decrease", "tolerance": 0.05},
    ],
}

# A run in one of these states has passed its gates (registering comes right after).
GATE_PASSED = frozenset(
    {
        RunState.REGISTERING,
        RunState.REGISTERED,
        RunState.AWAITING_APPROVAL,
        RunState.CANARY,
        RunState.PROMOTED,
        RunState.ROLLED_BACK,
    }
)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def loop_config(**sections: Any) -> LoopConfig:
    """The base loop file with whole top-level sections replaced."""
    data = copy.deepcopy(BASE_LOOP)
    data.update(copy.deepcopy(sections))
    return parse_loop_config(data, base=Path("."))


def function_trainer(target: str) -> dict[str, Any]:
    """The base ``training:`` section with the estimator swapped for a ``module:function``."""
    training = {k: v for k, v in BASE_LOOP["training"].items() if k != "estimator"}
    return training | {"trainer": target}


class RecordClock:
    """A scenario's workspace clock: it moves only as records arrive, ``RATE`` a second.

    The inbox holds labels back for a second (``settle_s``) before the monitors read them,
    and everything else the loop decides is counted in records. On this clock that second
    is 50 records whatever the machine's speed, so a seed replays to the same record
    counts. It starts a day in the past, so it never runs ahead of the real clock that the
    trigger policy compares run times with.
    """

    def __init__(self) -> None:
        self._now = datetime.now(UTC) - timedelta(days=1)

    def __call__(self) -> datetime:
        return self._now

    def advance(self, records: int) -> None:
        self._now += timedelta(seconds=records / RATE)


@contextmanager
def scenario_workspace(
    prefix: str, clock: RecordClock | None = None
) -> Iterator[tuple[Workspace, Settings]]:
    """A fresh workspace on SQLite in a temporary folder (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix=f"mlgate-bench-loop-{prefix}-") as tmp:
        home = Path(tmp) / "home"
        settings = Settings(home=home, store_url=f"sqlite:///{home / 'mlgate.db'}", actor=ACTOR)
        if clock is None:
            Workspace.init(settings)
            opened = Workspace.open(settings)
        else:
            Workspace.init(settings, clock=clock)
            opened = Workspace.open(settings, clock=clock)
        with opened as workspace:
            yield workspace, settings


def deploy_champion(workspace: Workspace, world: SyntheticWorld) -> int:
    """A logistic regression on 2,000 rows of the world before the drift, serving ``risk``."""
    from sklearn.linear_model import LogisticRegression
    from skops.io import dumps

    from mlgate.serving.endpoints import EndpointStore
    from mlgate.serving.spec import parse_endpoint_yaml

    x, y = world.rows(2000, "before")
    model = LogisticRegression().fit(x, y)
    version = workspace.registry.register(ENDPOINT, dumps(model), actor=ACTOR)
    workspace.registry.move_alias(ENDPOINT, "champion", version.version, actor=ACTOR)
    spec = parse_endpoint_yaml(f"name: {ENDPOINT}\nroute: champion\n")
    EndpointStore(workspace.store, workspace.registry, workspace.log, workspace.clock).deploy(
        spec, actor=ACTOR
    )
    return version.version


def as_records(x: NDArray[np.float64], y: NDArray[np.int64], start: int) -> list[dict[str, Any]]:
    """Flat labelled records, ids ``r<start>``, ``r<start+1>``, ..., as a source delivers."""
    return [
        {
            "request_id": f"r{start + i}",
            **dict(zip(FEATURES, map(float, row), strict=True)),
            "label": int(label),
        }
        for i, (row, label) in enumerate(zip(x, y, strict=True))
    ]


def onset_of(seed: int) -> int:
    """The record (or request) index at which scenario ``seed``'s world changes."""
    return ONSET_MIN + int(np.random.default_rng([seed, 6]).integers(ONSET_SPAN))


def accuracy(model: LoadedModel, x: NDArray[np.float64], y: NDArray[np.int64]) -> float:
    outputs = model.predict({model.signature.inputs[0].name: x})
    predicted = np.asarray(outputs.get("label", outputs.get("prediction"))).reshape(-1)
    return float(np.mean(predicted.astype(np.int64) == y))


def candidate_model(workspace: Workspace, run: LoopRun) -> LoadedModel | None:
    """A run's trained model, loaded from its artifact as the gates loaded it (None if none)."""
    from mlgate.registry.flavors import flavor_named

    if run.artifact_sha256 is None or not run.data or "flavor" not in run.data:
        return None
    data = workspace.artifacts.get(run.artifact_sha256)
    flavor = flavor_named(str(run.data["flavor"]))
    inspection = flavor.inspect(data, trusted_types=tuple(run.data.get("trusted_types") or ()))
    return flavor.load(data, inspection)


def truth(world: SyntheticWorld, which: World) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Fresh rows of ``which`` world, never seen by the loop: what "better" is judged on."""
    return world.rows(TRUTH_ROWS, which)


def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    """Median, 90th percentile and maximum of what was reached (None when nothing was)."""
    if not values:
        return {"n": 0, "median": None, "p90": None, "max": None}
    array = np.asarray(values, dtype=np.float64)
    return {
        "n": len(values),
        "median": float(np.median(array)),
        "p90": float(np.percentile(array, 90)),
        "max": float(array.max()),
    }
