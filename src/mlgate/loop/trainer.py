"""Trainer specs: which code fits the loop's models, as written under ``training:``.

A loop names its trainer in one of two ways:

* ``trainer: builtin:sklearn`` with an ``estimator`` from a fixed allow-list of
  scikit-learn classes, configured entirely in YAML (``params``, ``scale``, ``seed``;
  see :mod:`mlgate.loop._builtin_sklearn`);
* ``trainer: my_pkg.train:fit``, the operator's own function, called as
  ``fit(frame, params)`` with the :class:`~mlgate.loop.frame.TrainingFrame` and the
  ``params`` mapping, returning a fitted scikit-learn estimator or an ONNX model.

Parsing imports nothing: a loop file can be checked where the trainer's dependencies
are not installed, and the operator's code runs only inside the training child
process (:mod:`mlgate.loop.train_process`). :func:`resolve_function` is there for a
caller that wants a missing module reported before the first run.

``params`` hold JSON scalars only, because they are recorded as the model version's
hyperparameters and in the ledger; anything richer belongs in the trainer's code.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlgate.errors import LoopConfigError
from mlgate.loop._builtin_sklearn import ESTIMATORS, builtin_params, estimator_class, fit_builtin
from mlgate.loop.frame import TrainingFrame
from mlgate.registry.records import JSONScalar

__all__ = [
    "BUILTIN_SKLEARN",
    "ESTIMATORS",
    "TrainerFunction",
    "TrainerSpec",
    "builtin_params",
    "estimator_class",
    "fit_builtin",
    "parse_trainer",
    "resolve_function",
]

BUILTIN_SKLEARN = "builtin:sklearn"

_KEYS = ("trainer", "estimator", "params", "time_budget_s", "seed", "scale")
_MAX_BUDGET_S = 7 * 24 * 3600  # beyond this a budget is a mistake (and too long to wait on)
_MAX_SEED = 2**32 - 1  # numpy's RandomState, which scikit-learn seeds, takes 0 .. 2**32-1

TrainerFunction = Callable[[TrainingFrame, dict[str, JSONScalar]], object]


@dataclass(frozen=True)
class TrainerSpec:
    """A parsed ``training:`` mapping. Build it with :func:`parse_trainer`."""

    target: str  # "builtin:sklearn" or "module:function"
    estimator: str | None
    params: Mapping[str, JSONScalar] = field(default_factory=dict)
    time_budget_s: float = 300.0
    seed: int = 0
    scale: bool = False  # builtin only: StandardScaler before the estimator

    @property
    def is_builtin(self) -> bool:
        return self.target == BUILTIN_SKLEARN

    @property
    def name(self) -> str:
        """The estimator class of the builtin, else ``module:function``: for progress lines."""
        return str(self.estimator) if self.is_builtin else self.target

    @property
    def described(self) -> str:
        """How errors name this trainer."""
        if self.is_builtin:
            return f"the built-in {self.estimator} trainer"
        return f"the trainer {self.target}"

    @property
    def module(self) -> str | None:
        """The module a ``module:function`` trainer lives in; ``None`` for the builtin."""
        return None if self.is_builtin else self.target.partition(":")[0]

    def to_json(self) -> dict[str, Any]:
        """The ``training:`` mapping again: ``parse_trainer(spec.to_json()) == spec``."""
        data: dict[str, Any] = {"trainer": self.target}
        if self.is_builtin:
            data["estimator"] = self.estimator
            data["scale"] = self.scale
        data.update(params=dict(self.params), time_budget_s=self.time_budget_s, seed=self.seed)
        return data


def parse_trainer(data: object, *, where: str = "training") -> TrainerSpec:
    """Check the ``training:`` mapping of a loop file; every mistake names its YAML path."""
    if not isinstance(data, Mapping):
        raise LoopConfigError(
            f"{where}: expected a mapping with `trainer` (builtin:sklearn or module:function), "
            f"found {_kind(data)}"
        )
    unknown = sorted(str(key) for key in data if key not in _KEYS)
    if unknown:
        raise LoopConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_KEYS)}"
        )
    target = _target(data.get("trainer"), f"{where}.trainer")
    builtin = target == BUILTIN_SKLEARN
    estimator = data.get("estimator")
    if builtin and not (isinstance(estimator, str) and estimator in ESTIMATORS):
        found = "nothing" if estimator is None else repr(estimator)
        raise LoopConfigError(
            f"{where}.estimator: the built-in trainer needs one of {', '.join(ESTIMATORS)}; "
            f"found {found}"
        )
    for key in ("estimator", "scale"):
        if not builtin and data.get(key) is not None:  # null reads as absent
            raise LoopConfigError(
                f"{where}.{key}: only `trainer: {BUILTIN_SKLEARN}` takes `{key}`; a function "
                f"trainer ({target}) builds its own model, so remove it or pass it in `params`"
            )
    scale = False if data.get("scale") is None else data["scale"]
    if not isinstance(scale, bool):
        raise LoopConfigError(f"{where}.scale: expected true or false, found {_show(scale)}")
    return TrainerSpec(
        target=target,
        estimator=estimator if builtin else None,
        params=_params(data.get("params", {}), f"{where}.params"),
        time_budget_s=_budget(data.get("time_budget_s", 300.0), f"{where}.time_budget_s"),
        seed=_seed(data.get("seed", 0), f"{where}.seed"),
        scale=scale,
    )


def resolve_function(target: str) -> TrainerFunction:
    """Import ``module:function``; a module that is missing or lacks it is a config error."""
    module_name, _, name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LoopConfigError(
            f"cannot import the trainer module {module_name!r} ({type(exc).__name__}: {exc}); "
            "install it, or run the loop from the directory that holds it (or add it to "
            "PYTHONPATH)"
        ) from exc
    function = getattr(module, name, None)
    if not callable(function):
        raise LoopConfigError(
            f"the trainer module {module_name!r} has no function {name!r}; fix `trainer:` "
            f"(module:function) or define {name}(frame, params) in {module_name}"
        )
    trainer: TrainerFunction = function
    return trainer


def _target(value: object, where: str) -> str:
    if value == BUILTIN_SKLEARN:
        return BUILTIN_SKLEARN
    if isinstance(value, str) and value.startswith("builtin:"):
        raise LoopConfigError(
            f"{where}: the only built-in trainer is `{BUILTIN_SKLEARN}`, found {_show(value)}; "
            "name your own as `module:function`"
        )
    if isinstance(value, str):
        module, colon, function = value.partition(":")
        parts = module.split(".")
        if colon and function.isidentifier() and all(p.isidentifier() for p in parts):
            return value
    raise LoopConfigError(
        f"{where}: expected `{BUILTIN_SKLEARN}` or a function as `module:function` "
        f"(e.g. my_pkg.train:fit), found {_show(value)}"
    )


def _params(value: object, where: str) -> dict[str, JSONScalar]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise LoopConfigError(
            f"{where}: expected a mapping of names to values, found {_kind(value)}"
        )
    params: dict[str, JSONScalar] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise LoopConfigError(f"{where}: parameter names are identifiers, found {_show(key)}")
        if item is not None and not isinstance(item, str | bool | int | float):
            raise LoopConfigError(
                f"{where}.{key}: expected a string, number, boolean or null (hyperparameters "
                f"are recorded as JSON scalars), found {_kind(item)}"
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise LoopConfigError(f"{where}.{key}: expected a finite number, found {item}")
        params[key] = item
    return params


def _budget(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LoopConfigError(f"{where}: expected seconds as a number, found {_show(value)}")
    if not 0 < value <= _MAX_BUDGET_S:  # NaN fails too
        raise LoopConfigError(
            f"{where}: expected a positive number of seconds up to {_MAX_BUDGET_S} (a week), "
            f"found {_show(value)}"
        )
    return float(value)


def _seed(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_SEED:
        raise LoopConfigError(
            f"{where}: expected an integer from 0 to {_MAX_SEED}, found {_show(value)}"
        )
    return value


def _kind(value: object) -> str:
    return "nothing" if value is None else f"a {type(value).__name__} ({_show(value)})"


def _show(value: object) -> str:
    """``repr`` cut to a line; YAML can hold an int too long to print."""
    try:
        text = repr(value)
    except ValueError:
        return f"an {type(value).__name__} too large to print"
    return text if len(text) <= 60 else text[:57] + "..."
