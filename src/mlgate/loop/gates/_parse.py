"""Read the YAML value under ``gates:`` into a :class:`~mlgate.loop.gates.spec.Gate`.

Every mistake is a :class:`LoopConfigError` naming the exact place, such as
``gates.all_of[2].vs_champion.metric``, and what is allowed there: a gate is what stands
between a bad model and production, so a typo must never be skipped over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, cast

from mlgate.errors import LoopConfigError
from mlgate.loop.gates._leaves import LEAVES, SignificanceCheck, SpecError
from mlgate.loop.gates._metrics import METRICS
from mlgate.loop.gates.inputs import Task
from mlgate.loop.gates.spec import AllOf, AnyOf, Gate, Node

__all__ = ["parse_gate"]

_LEAF_BY_KIND = {cls.KIND: cls for cls in LEAVES}
_KINDS = (AllOf.KIND, AnyOf.KIND, *_LEAF_BY_KIND)
_EXAMPLE = "{metric: {name: accuracy, min: 0.8}}"


def parse_gate(data: object, *, task: Task | None = None) -> Gate | None:
    """The gate configured by ``data``; None when nothing is configured (nothing is promoted).

    A bare list means ``all_of``. With ``task`` given, metrics of the other task are
    refused here rather than at the first evaluation.
    """
    if data is None or (isinstance(data, Mapping | list | tuple) and not data):
        return None
    return Gate(_node(data, "gates", task))


def _node(data: object, path: str, task: Task | None) -> Node:
    if isinstance(data, list | tuple):
        return AllOf(_children(data, path, task))
    if not isinstance(data, Mapping):
        raise LoopConfigError(
            f"{path}: expected a check such as {_EXAMPLE} or a list of checks, "
            f"found {type(data).__name__} {data!r}"
        )
    if len(data) != 1:
        raise LoopConfigError(
            f"{path}: expected exactly one check, found keys {sorted(map(str, data))}; "
            "put several checks in a list under all_of or any_of"
        )
    ((kind, params),) = data.items()
    if kind not in _KINDS:
        raise LoopConfigError(f"{path}: unknown check {kind!r}; the checks are {', '.join(_KINDS)}")
    here = f"{path}.{kind}"
    if kind in (AllOf.KIND, AnyOf.KIND):
        if not isinstance(params, list | tuple):
            raise LoopConfigError(f"{here}: expected a list of checks, found {params!r}")
        cls = AllOf if kind == AllOf.KIND else AnyOf
        return cls(_children(params, here, task))
    return _leaf(kind, {} if params is None else params, here, task)


def _children(items: list[Any] | tuple[Any, ...], path: str, task: Task | None) -> tuple[Node, ...]:
    if not items:
        raise LoopConfigError(
            f"{path}: an empty list of checks would decide without looking at the model; "
            "list at least one check or remove the entry"
        )
    return tuple(_node(item, f"{path}[{i}]", task) for i, item in enumerate(items))


def _leaf(kind: str, params: object, path: str, task: Task | None) -> Node:
    cls = _LEAF_BY_KIND[kind]
    if not isinstance(params, Mapping):
        raise LoopConfigError(
            f"{path}: expected a mapping of settings, found {type(params).__name__} {params!r}"
        )
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    allowed = _allowed(cls, params, names)
    unknown = sorted(str(k) for k in params if k not in allowed)
    if unknown:
        raise LoopConfigError(
            f"{path}: unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"{_described(kind, params)} takes {', '.join(allowed)}"
        )
    required = [f.name for f in fields(cls) if f.default is MISSING]  # type: ignore[arg-type]
    missing = [name for name in required if name not in params]
    if missing:
        raise LoopConfigError(f"{path}.{missing[0]}: required; {kind} takes {', '.join(names)}")
    kwargs = {str(k): tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    try:
        node = cast(Node, cls(**kwargs))
    except SpecError as exc:
        raise LoopConfigError(f"{path}.{exc.field}: {exc.reason}") from None
    if task is not None:
        for field in ("name", "metric"):
            metric = kwargs.get(field)
            if isinstance(metric, str) and METRICS[metric].task != task:
                fitting = [m for m, spec in METRICS.items() if spec.task == task]
                raise LoopConfigError(
                    f"{path}.{field}: {metric} is a {METRICS[metric].task} metric but this "
                    f"loop's task is {task}; use one of {', '.join(fitting)}"
                )
    return node


def _allowed(cls: type, params: Mapping[Any, Any], names: list[str]) -> list[str]:
    """Settings a check takes; significance takes alpha or confidence by its test."""
    if cls is not SignificanceCheck:
        return names
    test = params.get("test", "bootstrap")
    if test == "mcnemar":
        return ["metric", "test", "alpha"]
    if test == "bootstrap":
        return ["metric", "test", "confidence", "n_resamples"]
    return names  # a bad test value: the check itself says what is allowed


def _described(kind: str, params: Mapping[Any, Any]) -> str:
    if kind == SignificanceCheck.KIND:
        return f"significance with test: {params.get('test', 'bootstrap')}"
    return kind
