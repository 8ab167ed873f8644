"""Offline evaluation of a bandit policy on logged traffic, before it routes real users.

Replay (Li, Chu, Langford and Wang, "Unbiased Offline Evaluation of
Contextual-bandit-based News Article Recommendation Algorithms", WSDM 2011,
Algorithm 3): walk the logged events in order; for each, ask the policy for an
arm given the event's context. If it picks the arm the log shows, the event
counts: its reward is recorded and fed back to the policy (``update``). Any other
pick is skipped, as if that request never came. When the logged arms were drawn
uniformly at random, independently of the context, the matched events are an
unbiased sample of what the policy would have experienced online, so the mean
of their rewards estimates the policy's mean reward per round; about ``1/k`` of
the events match.

* The interval is the normal approximation over the matched rewards. For a
  learning policy those are not independent, so read it as approximate.
* Replay needs a **uniform** log. The arm frequencies are checked with
  Pearson's chi-square test against equal shares; a log that fails it (p below
  ``uniform_alpha``, default 0.01) warns with :class:`NonUniformLogWarning`
  (``on_nonuniform="warn"``), raises :class:`~mlgate.errors.ExperimentInputError`
  (``"error"``) or is accepted silently (``"ignore"``); the test is in the result
  either way. A log that was not uniform biases the replay estimate.
* When the log records the probability with which each logged arm was chosen
  (``propensity``), the result also holds the inverse-propensity estimate
  (Horvitz and Thompson 1952): the mean over *all* events of
  ``reward / propensity`` where the policy matched, else 0, with its normal
  interval. It stays unbiased on non-uniform logs with known propensities.

Logs load from JSON Lines, CSV or Parquet (:func:`load_log`) with columns
``arm``, ``reward``, optional ``propensity``, and context columns (by default all
others), or are built in memory from :class:`LoggedEvent` values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from mlgate.errors import ExperimentInputError
from mlgate.experiments.bandits import Arm

__all__ = [
    "EventLog",
    "LoggedEvent",
    "NonUniformLogWarning",
    "ReplayPolicy",
    "ReplayResult",
    "UniformityCheck",
    "load_log",
    "replay",
]

OnNonUniform = Literal["warn", "error", "ignore"]
FloatArray = NDArray[np.float64]


class ReplayPolicy(Protocol):
    """What replay needs of a policy: every bandit here has it, and so can a fixed rule."""

    @property
    def arms(self) -> Sequence[Arm]: ...

    def pull(self, context: Any = None) -> Arm: ...

    def update(self, arm: Arm, reward: float, context: Any = None) -> None: ...


class NonUniformLogWarning(UserWarning):
    """The logged arms were not chosen uniformly; a replay estimate on them is biased."""


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One logged request: the arm served, its reward, the context, and P(arm) if known."""

    arm: Arm
    reward: float
    context: Mapping[str, Any] | None = None
    propensity: float | None = None


@dataclass(frozen=True)
class EventLog:
    """Logged events, column-wise. Build with :meth:`from_events` or :func:`load_log`."""

    arms: tuple[Any, ...]
    rewards: FloatArray
    contexts: tuple[Mapping[str, Any], ...] | None = None
    propensities: FloatArray | None = None
    source: str = "the log"

    def __post_init__(self) -> None:
        size = len(self.arms)
        if self.rewards.shape != (size,):
            raise ExperimentInputError(
                f"{self.source}: {size} arms but {self.rewards.size} rewards"
            )
        _check_finite(self.rewards, "reward", self.source)
        if self.contexts is not None and len(self.contexts) != size:
            raise ExperimentInputError(
                f"{self.source}: {size} events but {len(self.contexts)} contexts"
            )
        if self.propensities is not None:
            if self.propensities.shape != (size,):
                raise ExperimentInputError(
                    f"{self.source}: {size} events but {self.propensities.size} propensities"
                )
            _check_finite(self.propensities, "propensity", self.source)
            bad = (self.propensities <= 0.0) | (self.propensities > 1.0)
            if bad.any():
                at = int(np.flatnonzero(bad)[0])
                raise ExperimentInputError(
                    f"{self.source}: propensity {self.propensities[at]} at event {at} is not in "
                    "(0, 1]; it must be the probability with which the logged arm was chosen"
                )

    def __len__(self) -> int:
        return len(self.arms)

    @classmethod
    def from_events(cls, events: Iterable[LoggedEvent], *, source: str = "the log") -> EventLog:
        """Column-wise log of ``events``; contexts and propensities all given or all absent."""
        rows = list(events)
        contexts = [event.context for event in rows]
        propensities = [event.propensity for event in rows]
        for name, values in (("context", contexts), ("propensity", propensities)):
            given = sum(value is not None for value in values)
            if 0 < given < len(rows):
                raise ExperimentInputError(
                    f"{source}: {given} of {len(rows)} events have a {name}; give every event "
                    f"one or none"
                )
        has_context = bool(rows) and contexts[0] is not None
        has_propensity = bool(rows) and propensities[0] is not None
        return cls(
            arms=tuple(event.arm for event in rows),
            rewards=_floats([event.reward for event in rows], "reward", source),
            contexts=tuple(c for c in contexts if c is not None) if has_context else None,
            propensities=(_floats(propensities, "propensity", source) if has_propensity else None),
            source=source,
        )


@dataclass(frozen=True)
class UniformityCheck:
    """Pearson's chi-square test of the logged arm counts against equal shares."""

    counts: dict[Arm, int]
    chi_square: float
    p_value: float
    alpha: float

    @property
    def uniform(self) -> bool:
        """Whether the counts are consistent with uniform logging at level ``alpha``."""
        return self.p_value >= self.alpha


@dataclass(frozen=True)
class ReplayResult:
    """What replaying a policy on a log estimates; ``nan`` where nothing matched."""

    mean_reward: float
    ci: tuple[float, float]
    confidence: float
    matched: int
    total: int
    pulls: dict[Arm, int]
    uniformity: UniformityCheck
    ips_mean: float | None = None
    ips_ci: tuple[float, float] | None = None
    reward_sums: dict[Arm, float] = field(default_factory=dict)

    @property
    def match_rate(self) -> float:
        return self.matched / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (``nan`` becomes None; arm keys become strings)."""

        def num(value: float | None) -> float | None:
            return None if value is None or math.isnan(value) else value

        return {
            "mean_reward": num(self.mean_reward),
            "ci": [num(self.ci[0]), num(self.ci[1])],
            "confidence": self.confidence,
            "matched": self.matched,
            "total": self.total,
            "match_rate": self.match_rate,
            "pulls": {str(arm): n for arm, n in self.pulls.items()},
            "ips_mean": num(self.ips_mean),
            "ips_ci": None if self.ips_ci is None else [num(v) for v in self.ips_ci],
            "uniformity": {
                "counts": {str(arm): n for arm, n in self.uniformity.counts.items()},
                "chi_square": self.uniformity.chi_square,
                "p_value": self.uniformity.p_value,
                "uniform": self.uniformity.uniform,
            },
        }


def replay(
    policy: ReplayPolicy,
    log: EventLog | Iterable[LoggedEvent],
    *,
    confidence: float = 0.95,
    uniform_alpha: float = 0.01,
    on_nonuniform: OnNonUniform = "warn",
) -> ReplayResult:
    """Replay ``policy`` over ``log`` (it learns from the matched events as it goes)."""
    if not 0.0 < confidence < 1.0:
        raise ExperimentInputError(f"confidence must be in (0, 1), found {confidence}")
    if on_nonuniform not in ("warn", "error", "ignore"):
        raise ExperimentInputError(
            f"on_nonuniform must be 'warn', 'error' or 'ignore', found {on_nonuniform!r}"
        )
    events = log if isinstance(log, EventLog) else EventLog.from_events(log)
    if len(events) == 0:
        raise ExperimentInputError(f"{events.source} has no events to replay")
    logged = _resolve_arms(policy.arms, events)
    uniformity = _check_uniform(policy.arms, logged, uniform_alpha)
    if not uniformity.uniform and on_nonuniform != "ignore":
        message = (
            f"{events.source} is not uniformly randomised (chi-square p = "
            f"{uniformity.p_value:.3g} < {uniform_alpha}; arm counts {uniformity.counts}); "
            "the replay estimate is biased"
            + ("; use the inverse-propensity estimate" if events.propensities is not None else "")
        )
        if on_nonuniform == "error":
            raise ExperimentInputError(message + " (pass on_nonuniform='warn' to replay anyway)")
        warnings.warn(NonUniformLogWarning(message), stacklevel=2)

    arms = policy.arms
    contexts = events.contexts
    rewards = events.rewards.tolist()
    matched_rewards: list[float] = []
    pulls = dict.fromkeys(arms, 0)
    sums = dict.fromkeys(arms, 0.0)
    hits = np.zeros(len(events), dtype=bool)
    for i, index in enumerate(logged):
        context = contexts[i] if contexts is not None else None
        arm = arms[index]
        if policy.pull(context) == arm:
            reward = rewards[i]
            policy.update(arm, reward, context)
            matched_rewards.append(reward)
            pulls[arm] += 1
            sums[arm] += reward
            hits[i] = True

    z = float(stats.norm.ppf(0.5 + confidence / 2))
    mean, ci = _mean_ci(np.asarray(matched_rewards), z)
    ips_mean: float | None = None
    ips_ci: tuple[float, float] | None = None
    if events.propensities is not None:
        terms = np.where(hits, events.rewards / events.propensities, 0.0)
        ips_mean, ips_ci = _mean_ci(terms, z)
    return ReplayResult(
        mean_reward=mean,
        ci=ci,
        confidence=confidence,
        matched=len(matched_rewards),
        total=len(events),
        pulls=pulls,
        uniformity=uniformity,
        ips_mean=ips_mean,
        ips_ci=ips_ci,
        reward_sums=sums,
    )


def load_log(
    path: str | Path,
    *,
    arm_column: str = "arm",
    reward_column: str = "reward",
    propensity_column: str = "propensity",
    context_columns: Sequence[str] | None = None,
) -> EventLog:
    """Read a log from ``.jsonl``/``.ndjson``, ``.csv`` or ``.parquet``.

    Context columns default to every column but the arm, reward and propensity
    ones; pass ``context_columns=[]`` for a non-contextual log. A propensity
    column is used when present.
    """
    source = str(path)
    table = _read_table(Path(path))
    names = list(table.column_names)
    for column in (arm_column, reward_column):
        if column not in names:
            raise ExperimentInputError(
                f"{source} has no {column!r} column (columns: {names}); every event needs "
                f"{arm_column!r} and {reward_column!r}"
            )
    arms = table.column(arm_column).to_pylist()
    if None in arms:
        raise ExperimentInputError(
            f"{source}: row {arms.index(None) + 1} has no {arm_column!r}; every event needs one"
        )
    rewards = _floats(table.column(reward_column).to_pylist(), reward_column, source)
    propensities = None
    if propensity_column in names:
        propensities = _floats(
            table.column(propensity_column).to_pylist(), propensity_column, source
        )
    if context_columns is None:
        context_columns = [
            n for n in names if n not in (arm_column, reward_column, propensity_column)
        ]
    missing = [c for c in context_columns if c not in names]
    if missing:
        raise ExperimentInputError(f"{source} has no context columns {missing} (columns: {names})")
    contexts = tuple(table.select(list(context_columns)).to_pylist()) if context_columns else None
    return EventLog(tuple(arms), rewards, contexts, propensities, source=source)


_FORMATS = {
    ".jsonl": "json",
    ".ndjson": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def _read_table(path: Path) -> Any:
    """The file as a pyarrow Table, with pyarrow's errors translated to ours."""
    import pyarrow as pa  # imported here: only log loading needs it
    import pyarrow.csv as pa_csv
    import pyarrow.json as pa_json
    import pyarrow.parquet as pa_parquet

    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ExperimentInputError(
            f"{path}: unknown log format {path.suffix!r}; use .jsonl (one JSON object per "
            "line), .csv or .parquet"
        )
    if not path.is_file():
        raise ExperimentInputError(f"{path}: no such log file")
    try:
        if kind == "json":
            return pa_json.read_json(path)
        if kind == "csv":
            return pa_csv.read_csv(path)
        return pa_parquet.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ExperimentInputError(f"{path}: cannot read it as {kind.upper()}: {exc}") from exc


def _floats(values: Sequence[Any], name: str, source: str) -> FloatArray:
    for row, value in enumerate(values, start=1):
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ExperimentInputError(
                f"{source}: {name} in row {row} must be a number, found {value!r}"
            )
    array = np.asarray(values, dtype=np.float64).reshape(len(values))
    _check_finite(array, name, source)
    return array


def _check_finite(values: FloatArray, name: str, source: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 1
        raise ExperimentInputError(
            f"{source}: {name} in row {row} must be a finite number, found {values[row - 1]}"
        )


def _resolve_arms(arms: Sequence[Arm], events: EventLog) -> list[int]:
    """Logged arm names as indices into the policy's arms; ``"1"`` matches arm ``1``."""
    lookup: dict[Any, int] = {}
    for index, arm in enumerate(arms):
        lookup.setdefault(str(arm), index)
    for index, arm in enumerate(arms):
        lookup[arm] = index
    indices: list[int] = []
    unknown: set[str] = set()
    for arm in events.arms:
        try:
            found = lookup.get(arm)
        except TypeError:
            found = None
        if found is None:
            found = lookup.get(str(arm))
        if found is None:
            unknown.add(repr(arm))
            continue
        indices.append(found)
    if unknown:
        raise ExperimentInputError(
            f"{events.source} logs arms [{', '.join(sorted(unknown))}] that are not the "
            f"policy's arms {list(arms)}; replay needs a policy over the logged arms"
        )
    return indices


def _check_uniform(arms: Sequence[Arm], logged: list[int], alpha: float) -> UniformityCheck:
    if not 0.0 < alpha < 1.0:
        raise ExperimentInputError(f"uniform_alpha must be in (0, 1), found {alpha}")
    counts = np.bincount(np.asarray(logged, dtype=np.intp), minlength=len(arms))
    chi_square, p_value = stats.chisquare(counts)
    return UniformityCheck(
        counts={arm: int(n) for arm, n in zip(arms, counts, strict=True)},
        chi_square=float(chi_square),
        p_value=float(p_value),
        alpha=alpha,
    )


def _mean_ci(values: FloatArray, z: float) -> tuple[float, tuple[float, float]]:
    if values.size == 0:
        return math.nan, (math.nan, math.nan)
    mean = float(values.mean())
    if values.size < 2:
        return mean, (math.nan, math.nan)
    half = z * float(values.std(ddof=1)) / math.sqrt(values.size)
    return mean, (mean - half, mean + half)
