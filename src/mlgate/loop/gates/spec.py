"""What a gate asks: a tree of checks joined by ``all_of`` / ``any_of``.

The tree is plain frozen data, built from YAML by :func:`~mlgate.loop.gates.parse_gate`
or in code, and validated when built; :func:`~mlgate.loop.gates.evaluate_gate` judges it.
The composition follows sigstore-python's ``AllOf``/``AnyOf`` verification policies: an
empty composite is refused, because an empty ``all_of`` would pass everything.
``to_json`` gives the YAML shape back with every default spelled out, so the report can
record exactly which gate a model passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from mlgate.errors import LoopConfigError
from mlgate.loop.gates._leaves import (
    LEAVES,
    ChampionCheck,
    LatencyCheck,
    MetricCheck,
    SignatureCheck,
    SignificanceCheck,
    SizeCheck,
    SliceCheck,
)

__all__ = [
    "AllOf",
    "AnyOf",
    "ChampionCheck",
    "Gate",
    "LatencyCheck",
    "MetricCheck",
    "Node",
    "SignatureCheck",
    "SignificanceCheck",
    "SizeCheck",
    "SliceCheck",
]


@dataclass(frozen=True)
class AllOf:
    """Passes when every check passes (all are evaluated, so the report has every number)."""

    KIND: ClassVar[str] = "all_of"
    checks: tuple[Node, ...]

    def __post_init__(self) -> None:
        _children(self.KIND, self.checks)

    def to_json(self) -> dict[str, Any]:
        return {self.KIND: [check.to_json() for check in self.checks]}


@dataclass(frozen=True)
class AnyOf:
    """Passes when at least one check passes."""

    KIND: ClassVar[str] = "any_of"
    checks: tuple[Node, ...]

    def __post_init__(self) -> None:
        _children(self.KIND, self.checks)

    def to_json(self) -> dict[str, Any]:
        return {self.KIND: [check.to_json() for check in self.checks]}


Node = (
    AllOf
    | AnyOf
    | MetricCheck
    | ChampionCheck
    | SignificanceCheck
    | SliceCheck
    | LatencyCheck
    | SizeCheck
    | SignatureCheck
)


@dataclass(frozen=True)
class Gate:
    """A configured gate: the root of its check tree."""

    root: Node

    def __post_init__(self) -> None:
        if not isinstance(self.root, (AllOf, AnyOf, *LEAVES)):
            raise LoopConfigError(f"a gate's root must be a check, found {self.root!r}")

    def to_json(self) -> dict[str, Any]:
        """The YAML shape, defaults spelled out; ``parse_gate`` reads it back equal."""
        return self.root.to_json()

    def leaves(self) -> Iterator[Node]:
        """Every non-composite check, depth first."""
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, AllOf | AnyOf):
                stack.extend(reversed(node.checks))
            else:
                yield node

    @property
    def slice_columns(self) -> tuple[str, ...]:
        """Segment columns the gate reads: give them in ``GateInputs.slices``."""
        cols = [n.column for n in self.leaves() if isinstance(n, SliceCheck)]
        return tuple(dict.fromkeys(cols))

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Metrics the gate computes (distinct, in order of first use)."""
        names = [getattr(n, "name", None) or getattr(n, "metric", None) for n in self.leaves()]
        return tuple(dict.fromkeys(n for n in names if isinstance(n, str)))


def _children(kind: str, checks: object) -> None:
    if not isinstance(checks, tuple) or not checks:
        raise LoopConfigError(
            f"{kind} needs a non-empty list of checks (an empty {kind} would decide "
            "without looking at the model)"
        )
    for check in checks:
        if not isinstance(check, (AllOf, AnyOf, *LEAVES)):
            raise LoopConfigError(f"{kind} holds {check!r}, which is not a check")
