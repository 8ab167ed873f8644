"""A canary's settings: the traffic steps, the judging rhythm, the limits, the metrics.

Stored whole (``to_json``) in the canary's row when it starts, so a running canary keeps
the settings it was started with even if the defaults change in a later release.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlgate.errors import CanaryError, InvalidNameError
from mlgate.experiments.canary.judge import DEFAULT_METRICS, JudgeConfig, MetricSpec
from mlgate.registry.records import check_alias_name

__all__ = ["MAX_ROWS_PER_VERSION", "CanaryConfig"]

MAX_ROWS_PER_VERSION = 20_000
"""Default cap on the log rows read per version and judgement: the newest ones win."""

_FIELDS = (
    "steps",
    "interval_s",
    "failure_limit",
    "inconclusive_limit",
    "metrics",
    "judge",
    "sticky_key",
    "promote_alias",
    "prediction_output",
    "max_rows",
)


@dataclass(frozen=True)
class CanaryConfig:
    """How a canary moves.

    - ``steps``: the candidate's traffic share in percent, strictly increasing, ending
      at 100. Every step below 100 is judged; reaching 100 is the promotion.
    - ``interval_s``: time between judgements (and the least time a step lasts).
    - ``failure_limit``: failed judgements, over the whole rollout, that roll it back
      (1: the first failure does).
    - ``inconclusive_limit``: consecutive inconclusive judgements after which the canary
      holds its step until an operator resumes or aborts it.
    - ``sticky_key``: request attribute that keeps a user on one variant (none: random).
    - ``promote_alias``: registry alias moved to the candidate on promotion (None: none).
    - ``prediction_output``: the output whose first element is compared for prediction
      drift (None: the first output logged).
    - ``max_rows``: log rows read per version per judgement, newest first.
    """

    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
    interval_s: float = 300.0
    failure_limit: int = 1
    inconclusive_limit: int = 3
    metrics: tuple[MetricSpec, ...] = DEFAULT_METRICS
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    sticky_key: str | None = None
    promote_alias: str | None = "champion"
    prediction_output: str | None = None
    max_rows: int = MAX_ROWS_PER_VERSION

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        if not steps or any(not _number(s) for s in steps):
            raise CanaryError(f"canary steps must be a list of percentages, got {self.steps!r}")
        steps = tuple(float(s) for s in steps)
        if any(not 0 < s <= 100 for s in steps) or any(
            b <= a for a, b in zip(steps, steps[1:], strict=False)
        ):
            raise CanaryError(
                "canary steps must be strictly increasing percentages in (0, 100], such as "
                f"5, 25, 50, 100; got {[_short(s) for s in steps]}"
            )
        if steps[-1] != 100.0:
            raise CanaryError(
                f"the last canary step must be 100 (the promotion), got {_short(steps[-1])}"
            )
        if len(steps) < 2:
            raise CanaryError(
                "a canary needs at least one step below 100 to judge before the promotion, "
                "such as 5, 25, 50, 100"
            )
        object.__setattr__(self, "steps", steps)
        if not _number(self.interval_s) or self.interval_s <= 0:
            raise CanaryError(
                f"interval_s must be a number of seconds above 0, got {self.interval_s!r}"
            )
        for name in ("failure_limit", "inconclusive_limit", "max_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CanaryError(f"{name} must be an integer of at least 1, got {value!r}")
        metrics = tuple(self.metrics)
        if not metrics or not all(isinstance(m, MetricSpec) for m in metrics):
            raise CanaryError("a canary needs at least one metric (MetricSpec)")
        names = [m.name for m in metrics]
        if len(set(names)) != len(names):
            raise CanaryError(f"canary metric names must be distinct, got {names}")
        object.__setattr__(self, "metrics", metrics)
        if self.sticky_key is not None and (
            not isinstance(self.sticky_key, str) or not self.sticky_key
        ):
            raise CanaryError(f"sticky_key must be a non-empty name, got {self.sticky_key!r}")
        for name in ("promote_alias", "prediction_output"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise CanaryError(f"{name} must be a non-empty name or null, got {value!r}")
        if self.promote_alias is not None:
            try:
                check_alias_name(self.promote_alias)
            except InvalidNameError as exc:
                raise CanaryError(f"promote_alias: {exc}") from None

    @property
    def judged_steps(self) -> int:
        """Steps that are judged: all but the final 100%."""
        return len(self.steps) - 1

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": list(self.steps),
            "interval_s": self.interval_s,
            "failure_limit": self.failure_limit,
            "inconclusive_limit": self.inconclusive_limit,
            "metrics": [m.to_json() for m in self.metrics],
            "judge": self.judge.to_json(),
            "sticky_key": self.sticky_key,
            "promote_alias": self.promote_alias,
            "prediction_output": self.prediction_output,
            "max_rows": self.max_rows,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CanaryConfig:
        """Parse settings as an API or CLI gives them; absent fields take the defaults."""
        if not isinstance(data, Mapping):
            raise CanaryError(f"canary settings are a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise CanaryError(
                f"unknown canary settings {unknown}; the settings are {list(_FIELDS)}"
            )
        values = dict(data)
        if "steps" in values:
            if not isinstance(values["steps"], list | tuple):
                raise CanaryError(f"canary steps must be a list, got {values['steps']!r}")
            values["steps"] = tuple(values["steps"])
        if "metrics" in values:
            if not isinstance(values["metrics"], list | tuple):
                raise CanaryError("canary metrics must be a list of metric mappings")
            values["metrics"] = tuple(MetricSpec.from_json(m) for m in values["metrics"])
        if "judge" in values:
            if not isinstance(values["judge"], Mapping):
                raise CanaryError("canary judge settings must be a mapping")
            values["judge"] = JudgeConfig.from_json(values["judge"])
        return cls(**values)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: float) -> str:
    return f"{value:g}"
