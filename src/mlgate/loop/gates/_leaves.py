"""The leaf checks of a gate, as validated frozen data (see :mod:`.spec` for the tree).

Each check validates its own values when built, so a gate made in code is held to the
same rules as one read from YAML; :class:`SpecError` names the field, and the parser
prefixes the YAML path to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

from mlgate.errors import LoopConfigError
from mlgate.loop.gates._metrics import METRICS

__all__ = [
    "LEAVES",
    "ChampionCheck",
    "LatencyCheck",
    "Leaf",
    "MetricCheck",
    "SignatureCheck",
    "SignificanceCheck",
    "SizeCheck",
    "SliceCheck",
    "SpecError",
]


class SpecError(LoopConfigError):
    """A bad value in one field; the parser prefixes the YAML path to ``field``."""

    def __init__(self, kind: str, field: str, reason: str) -> None:
        super().__init__(f"{kind}.{field}: {reason}")
        self.field = field
        self.reason = reason


class Leaf:
    """A check that measures something; ``KIND`` is its key in YAML and in report paths."""

    KIND: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        params = {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
        return {self.KIND: {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}}


@dataclass(frozen=True)
class MetricCheck(Leaf):
    """The candidate's metric on the holdout lies within ``[min, max]`` (either may be open)."""

    KIND: ClassVar[str] = "metric"
    name: str
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        _metric(self, "name")
        _number(self, "min", optional=True)
        _number(self, "max", optional=True)
        if self.min is None and self.max is None:
            raise SpecError(self.KIND, "min", "give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SpecError(self.KIND, "min", f"min {self.min:g} is above max {self.max:g}")


@dataclass(frozen=True)
class ChampionCheck(Leaf):
    """Candidate minus champion, in the metric's good direction, is at least ``min_delta``.

    With ``relative`` the change is a fraction of the champion's value. A negative
    ``min_delta`` tolerates that much regression.
    """

    KIND: ClassVar[str] = "vs_champion"
    metric: str
    min_delta: float = 0.0
    relative: bool = False

    def __post_init__(self) -> None:
        _metric(self, "metric")
        _number(self, "min_delta")
        _flag(self, "relative")


@dataclass(frozen=True)
class SignificanceCheck(Leaf):
    """The improvement over the champion is statistically real.

    ``mcnemar``: exact one-sided McNemar test on accuracy, passes when p < ``alpha``.
    ``bootstrap``: paired percentile bootstrap interval of the difference at
    ``confidence``; passes when its lower bound (good direction) is above 0.
    """

    KIND: ClassVar[str] = "significance"
    metric: str
    test: Literal["mcnemar", "bootstrap"] = "bootstrap"
    alpha: float = 0.05
    confidence: float = 0.95
    n_resamples: int = 1000

    def __post_init__(self) -> None:
        _metric(self, "metric")
        if self.test not in ("mcnemar", "bootstrap"):
            raise SpecError(
                self.KIND, "test", f"expected mcnemar or bootstrap, found {self.test!r}"
            )
        _number(self, "alpha", low=0.0, high=1.0)
        _number(self, "confidence", low=0.0, high=1.0)
        _integer(self, "n_resamples", low=100, high=100_000)
        if self.test == "mcnemar":
            if self.metric != "accuracy":
                raise SpecError(
                    self.KIND,
                    "metric",
                    f"mcnemar compares right/wrong per row, so it tests accuracy only, not "
                    f"{self.metric}; use test: bootstrap for {self.metric}",
                )
            if (self.confidence, self.n_resamples) != (0.95, 1000):
                reason = "confidence and n_resamples are for test: bootstrap; mcnemar takes alpha"
                raise SpecError(self.KIND, "confidence", reason)
        elif self.alpha != 0.05:
            reason = (
                "alpha is for test: mcnemar; bootstrap takes confidence (0.95: the 95% interval)"
            )
            raise SpecError(self.KIND, "alpha", reason)

    def to_json(self) -> dict[str, Any]:
        if self.test == "mcnemar":
            return {self.KIND: {"metric": self.metric, "test": self.test, "alpha": self.alpha}}
        params = {"metric": self.metric, "test": self.test, "confidence": self.confidence}
        return {self.KIND: {**params, "n_resamples": self.n_resamples}}


@dataclass(frozen=True)
class SliceCheck(Leaf):
    """In each segment of ``column`` with at least ``min_rows`` rows, the candidate is not
    worse than the champion by more than ``max_drop`` (absolute, in the metric's units)."""

    KIND: ClassVar[str] = "slices"
    column: str
    metric: str
    max_drop: float = 0.0
    min_rows: int = 30

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise SpecError(self.KIND, "column", f"expected a column name, found {self.column!r}")
        _metric(self, "metric")
        _number(self, "max_drop", low=0.0, low_open=False)
        _integer(self, "min_rows", low=1)


@dataclass(frozen=True)
class LatencyCheck(Leaf):
    """p99 of the candidate's single-row latency is at most ``p99_ms``, and exceeds the
    champion's p99 by at most ``max_increase_ms``; either may be left out, not both."""

    KIND: ClassVar[str] = "latency"
    p99_ms: float | None = None
    max_increase_ms: float | None = None

    def __post_init__(self) -> None:
        _number(self, "p99_ms", optional=True, low=0.0)
        _number(self, "max_increase_ms", optional=True, low=0.0, low_open=False)
        if self.p99_ms is None and self.max_increase_ms is None:
            raise SpecError(self.KIND, "p99_ms", "give p99_ms, max_increase_ms or both")


@dataclass(frozen=True)
class SizeCheck(Leaf):
    """The candidate's artifact is at most ``max_mb`` megabytes (10^6 bytes)."""

    KIND: ClassVar[str] = "size"
    max_mb: float

    def __post_init__(self) -> None:
        _number(self, "max_mb", low=0.0)


@dataclass(frozen=True)
class SignatureCheck(Leaf):
    """The candidate accepts every request the endpoint accepts and still returns the
    outputs clients read (``outputs``; None: all of the endpoint's outputs)."""

    KIND: ClassVar[str] = "signature"
    outputs: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        out = self.outputs
        if out is not None and (
            not isinstance(out, tuple) or not all(isinstance(o, str) and o for o in out)
        ):
            raise SpecError(self.KIND, "outputs", f"expected a list of output names, found {out!r}")

    def to_json(self) -> dict[str, Any]:
        return {self.KIND: {} if self.outputs is None else {"outputs": list(self.outputs)}}


LEAVES: tuple[type[Leaf], ...] = (
    MetricCheck,
    ChampionCheck,
    SignificanceCheck,
    SliceCheck,
    LatencyCheck,
    SizeCheck,
    SignatureCheck,
)


def _metric(node: Any, field: str) -> None:
    name = getattr(node, field)
    if name not in METRICS:
        raise SpecError(
            node.KIND, field, f"unknown metric {name!r}; known metrics are {', '.join(METRICS)}"
        )


def _number(
    node: Any,
    field: str,
    *,
    optional: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = True,
) -> None:
    value = getattr(node, field)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(node.KIND, field, f"expected a finite number, found {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value >= high):
        lo = "" if low is None else ("> " if low_open else ">= ") + f"{low:g}"
        hi = "" if high is None else f"< {high:g}"
        bounds = " and ".join(b for b in (lo, hi) if b)
        raise SpecError(node.KIND, field, f"must be {bounds}, found {value:g}")
    object.__setattr__(node, field, float(value))


def _integer(node: Any, field: str, *, low: int, high: int | None = None) -> None:
    value = getattr(node, field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(node.KIND, field, f"expected an integer, found {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" + ("" if high is None else f" and at most {high}")
        raise SpecError(node.KIND, field, f"must be {bounds}, found {value}")


def _flag(node: Any, field: str) -> None:
    if not isinstance(getattr(node, field), bool):
        raise SpecError(node.KIND, field, f"expected true or false, found {getattr(node, field)!r}")
