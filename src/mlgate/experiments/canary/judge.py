"""Canary judgement: one Mann-Whitney test per metric, a weighted score, a verdict.

This is Kayenta's method (Netflix and Google, "Automated canary analysis", 2018; the
``NetflixACAJudge``): every declared metric compares the canary's samples with the
baseline's, collected over the same window from traffic split at random, with the
Mann-Whitney U test (Mann & Whitney 1947), which assumes no distribution (latencies are
skewed, error indicators are 0/1). A metric *fails* only when the difference is both
significant (two-sided p below its ``alpha``) and harmful beyond its ``tolerance``: a
significant 1% latency change on a million requests is real, but not worth a rollback.
The score is the weighted share of passing metrics among those with data, and the verdict
follows Kayenta's thresholds: ``>= pass_score`` passes, ``< marginal_score`` fails, and
between them is inconclusive (more data, or a human, decides). A failing ``critical``
metric fails the canary whatever the score.

A verdict needs data. With fewer than ``min_samples`` requests on either side the answer
is ``inconclusive`` with the reason "not enough data" and no score: a canary that has
served 3 requests has not passed, and it has not failed either.

Effects (how big and which way a difference is; ``+`` means the canary is higher):

- ``mean``: ``(mean_canary - mean_baseline) / |mean_baseline|`` (error rates, rewards);
- ``median``: the same with medians (latency: robust to a few slow outliers);
- ``rank_biserial``: ``2 U / (n_canary n_baseline) - 1`` in [-1, 1], the probability that
  a canary value exceeds a baseline one minus the reverse. Scale-free, so it suits
  predictions, whose units the judge does not know (prediction drift).

A relative effect over a baseline level of 0 is infinite (reported as ``null``) unless the
canary's level is 0 too: 0% errors against 2% is as harmful as a difference can be.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mlgate.errors import CanaryError

__all__ = [
    "DEFAULT_METRICS",
    "Judgement",
    "JudgeConfig",
    "MetricResult",
    "MetricSpec",
    "Observations",
    "SideSummary",
    "compare_metric",
    "judge",
]

Source = Literal["error_rate", "latency", "prediction", "reward"]
Harm = Literal["increase", "decrease", "either"]
Effect = Literal["mean", "median", "rank_biserial"]
Outcome = Literal["pass", "high", "low", "nodata"]
Verdict = Literal["pass", "fail", "inconclusive"]
FloatArray = NDArray[np.float64]

_SOURCES: tuple[Source, ...] = ("error_rate", "latency", "prediction", "reward")
_HARMS: tuple[Harm, ...] = ("increase", "decrease", "either")
_EFFECTS: tuple[Effect, ...] = ("mean", "median", "rank_biserial")
_DEFAULT_EFFECT: dict[Source, Effect] = {
    "error_rate": "mean",
    "latency": "median",
    "prediction": "rank_biserial",
    "reward": "mean",
}
NOT_ENOUGH_DATA = "not enough data"


def _finite_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(cast(float, value))
    )


@dataclass(frozen=True)
class MetricSpec:
    """One compared metric. ``tolerance`` is the effect (see the module doc) allowed in the
    harmful direction before a significant difference counts as a failure."""

    name: str
    source: Source
    harm: Harm = "increase"
    tolerance: float = 0.1
    critical: bool = False
    weight: float = 1.0
    alpha: float = 0.05
    effect: Effect | None = None  # None: the source's default, filled in (_DEFAULT_EFFECT)
    # The smallest harmful change of the centre (mean or median) in the metric's own
    # units that counts: 0.1 ms more latency is a real, relative +30 % at 0.3 ms, and
    # irrelevant to any latency objective.
    min_difference: float = 0.0

    def __post_init__(self) -> None:
        where = f"canary metric {self.name!r}"
        if not isinstance(self.name, str) or not 0 < len(self.name) <= 64:
            raise CanaryError(
                f"a canary metric needs a name of 1 to 64 characters, got {self.name!r}"
            )
        if self.source not in _SOURCES:
            raise CanaryError(
                f"{where}: source must be one of {list(_SOURCES)}, got {self.source!r}"
            )
        if self.harm not in _HARMS:
            raise CanaryError(f"{where}: harm must be one of {list(_HARMS)}, got {self.harm!r}")
        if self.effect is not None and self.effect not in _EFFECTS:
            raise CanaryError(
                f"{where}: effect must be one of {list(_EFFECTS)}, got {self.effect!r}"
            )
        if not _finite_number(self.tolerance) or self.tolerance < 0:
            raise CanaryError(f"{where}: tolerance must be a number >= 0, got {self.tolerance!r}")
        if not _finite_number(self.min_difference) or self.min_difference < 0:
            raise CanaryError(
                f"{where}: min_difference must be a number >= 0, got {self.min_difference!r}"
            )
        if not _finite_number(self.weight) or self.weight <= 0:
            raise CanaryError(f"{where}: weight must be a number above 0, got {self.weight!r}")
        if not _finite_number(self.alpha) or not 0 < self.alpha < 1:
            raise CanaryError(f"{where}: alpha must be in (0, 1), got {self.alpha!r}")
        if not isinstance(self.critical, bool):
            raise CanaryError(f"{where}: critical must be true or false, got {self.critical!r}")
        object.__setattr__(self, "effect", self.effect or _DEFAULT_EFFECT[self.source])

    @property
    def effect_kind(self) -> Effect:
        return self.effect or _DEFAULT_EFFECT[self.source]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "harm": self.harm,
            "tolerance": self.tolerance,
            "critical": self.critical,
            "weight": self.weight,
            "alpha": self.alpha,
            "effect": self.effect_kind,
            "min_difference": self.min_difference,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetricSpec:
        if not isinstance(data, Mapping):
            raise CanaryError(f"a canary metric is a mapping, got {type(data).__name__}")
        known = {
            "name",
            "source",
            "harm",
            "tolerance",
            "critical",
            "weight",
            "alpha",
            "effect",
            "min_difference",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise CanaryError(
                f"canary metric {data.get('name')!r} has unknown fields {unknown}; "
                f"the fields are {sorted(known)}"
            )
        if "name" not in data or "source" not in data:
            raise CanaryError("a canary metric needs at least 'name' and 'source'")
        return cls(**data)


DEFAULT_METRICS: tuple[MetricSpec, ...] = (
    # Any significant rise in errors beyond 10% (relative) fails the canary outright.
    MetricSpec("error_rate", "error_rate", harm="increase", tolerance=0.1, critical=True),
    MetricSpec("latency", "latency", harm="increase", tolerance=0.1, min_difference=1.0),
    # A new model is expected to answer differently; only a large shift counts (a broken
    # model answering constants, a changed output scale).
    MetricSpec("prediction_drift", "prediction", harm="either", tolerance=0.3),
    MetricSpec("reward", "reward", harm="decrease", tolerance=0.05),
)


@dataclass(frozen=True)
class JudgeConfig:
    pass_score: float = 95.0
    marginal_score: float = 75.0
    min_samples: int = 50

    def __post_init__(self) -> None:
        if not (
            _finite_number(self.pass_score)
            and _finite_number(self.marginal_score)
            and 0 <= self.marginal_score <= self.pass_score <= 100
        ):
            raise CanaryError(
                "canary scores need 0 <= marginal_score <= pass_score <= 100, got "
                f"marginal_score={self.marginal_score!r}, pass_score={self.pass_score!r}"
            )
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, int):
            raise CanaryError(f"min_samples must be an integer, got {self.min_samples!r}")
        if self.min_samples < 2:
            raise CanaryError(f"min_samples must be at least 2, got {self.min_samples}")

    def to_json(self) -> dict[str, Any]:
        return {
            "pass_score": self.pass_score,
            "marginal_score": self.marginal_score,
            "min_samples": self.min_samples,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JudgeConfig:
        unknown = sorted(set(data) - {"pass_score", "marginal_score", "min_samples"})
        if unknown:
            raise CanaryError(
                f"unknown judge settings {unknown}; use pass_score, marginal_score, min_samples"
            )
        return cls(**data)


def _array(values: ArrayLike) -> FloatArray:
    found = np.asarray(values, dtype=np.float64).reshape(-1)
    return found[np.isfinite(found)]


@dataclass(frozen=True)
class Observations:
    """One version's samples over a window: one error flag and latency per request, one
    prediction per answered request that logged outputs, one reward per rewarded request.
    Non-finite values are dropped."""

    errors: FloatArray = field(default_factory=lambda: np.empty(0))
    latency_ms: FloatArray = field(default_factory=lambda: np.empty(0))
    predictions: FloatArray = field(default_factory=lambda: np.empty(0))
    rewards: FloatArray = field(default_factory=lambda: np.empty(0))

    @classmethod
    def of(
        cls,
        *,
        errors: ArrayLike = (),
        latency_ms: ArrayLike = (),
        predictions: ArrayLike = (),
        rewards: ArrayLike = (),
    ) -> Observations:
        return cls(_array(errors), _array(latency_ms), _array(predictions), _array(rewards))

    @property
    def requests(self) -> int:
        return int(self.errors.size)

    def values(self, source: Source) -> FloatArray:
        if source == "error_rate":
            return self.errors
        if source == "latency":
            return self.latency_ms
        if source == "prediction":
            return self.predictions
        return self.rewards


@dataclass(frozen=True)
class SideSummary:
    """n and the level of one side; the percentiles are what latency dashboards show."""

    n: int
    mean: float | None
    median: float | None
    p90: float | None
    p99: float | None

    @classmethod
    def of(cls, values: FloatArray) -> SideSummary:
        if values.size == 0:
            return cls(0, None, None, None, None)
        p50, p90, p99 = np.percentile(values, [50.0, 90.0, 99.0])
        return cls(int(values.size), float(values.mean()), float(p50), float(p90), float(p99))

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": self.mean,
            "median": self.median,
            "p90": self.p90,
            "p99": self.p99,
        }


@dataclass(frozen=True)
class MetricResult:
    name: str
    source: Source
    outcome: Outcome
    p_value: float | None
    effect: float | None  # None: no data, or relative to a baseline level of 0 (infinite)
    baseline: SideSummary
    canary: SideSummary
    critical: bool
    weight: float
    reason: str

    @property
    def failed(self) -> bool:
        return self.outcome in ("high", "low")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "outcome": self.outcome,
            "p_value": self.p_value,
            "effect": self.effect,
            "critical": self.critical,
            "weight": self.weight,
            "reason": self.reason,
            "baseline": self.baseline.to_json(),
            "canary": self.canary.to_json(),
        }


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    score: float | None  # None when too little data to score
    reason: str
    requests_baseline: int
    requests_canary: int
    metrics: tuple[MetricResult, ...]

    @property
    def enough_data(self) -> bool:
        return self.score is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "score": self.score,
            "reason": self.reason,
            "requests": {"baseline": self.requests_baseline, "canary": self.requests_canary},
            "metrics": [m.to_json() for m in self.metrics],
        }


def compare_metric(
    spec: MetricSpec, baseline: ArrayLike, canary: ArrayLike, *, min_samples: int
) -> MetricResult:
    """Test one metric: Mann-Whitney two-sided, then the effect against the tolerance."""
    base, cand = _array(baseline), _array(canary)
    summaries = SideSummary.of(base), SideSummary.of(cand)

    def result(
        outcome: Outcome, p: float | None, effect: float | None, reason: str
    ) -> MetricResult:
        return MetricResult(
            spec.name,
            spec.source,
            outcome,
            p,
            effect,
            *summaries,
            spec.critical,
            spec.weight,
            reason,
        )

    if min(base.size, cand.size) < min_samples:
        return result(
            "nodata",
            None,
            None,
            f"{NOT_ENOUGH_DATA}: {cand.size} canary and {base.size} baseline samples, "
            f"need {min_samples} each",
        )
    from scipy.stats import mannwhitneyu  # scipy.stats takes ~0.5 s to import: on first use

    test = mannwhitneyu(cand, base, alternative="two-sided")
    p = float(test.pvalue)
    if not math.isfinite(p):  # scipy's tie correction leaves no variance: identical samples
        p = 1.0
    effect = _effect(spec.effect_kind, base, cand, float(test.statistic))
    shift = _centre_shift(spec.effect_kind, base, cand)
    floor = spec.min_difference
    harmful = {
        "increase": effect > spec.tolerance and shift > floor,
        "decrease": effect < -spec.tolerance and shift < -floor,
        "either": abs(effect) > spec.tolerance and abs(shift) > floor,
    }[spec.harm]
    shown = None if math.isinf(effect) else effect
    described = "infinite" if shown is None else f"{effect:+.4g}"
    if p < spec.alpha and harmful:
        direction: Outcome = "high" if effect > 0 else "low"
        return result(
            direction,
            p,
            shown,
            f"canary is {'higher' if effect > 0 else 'lower'} (p={p:.3g} < {spec.alpha}, "
            f"{spec.effect_kind} effect {described} beyond tolerance {spec.tolerance})",
        )
    why = (
        f"no significant difference (p={p:.3g} >= {spec.alpha})"
        if p >= spec.alpha
        else f"difference within tolerance or harmless ({spec.effect_kind} effect {described})"
    )
    return result("pass", p, shown, why)


def _centre_shift(kind: Effect, base: FloatArray, cand: FloatArray) -> float:
    """Canary minus baseline centre, in the metric's units (inf for rank effects: no floor)."""
    if kind == "rank_biserial":
        return math.inf if np.mean(cand) >= np.mean(base) else -math.inf
    centre = np.mean if kind == "mean" else np.median
    return float(centre(cand) - centre(base))


def _effect(kind: Effect, base: FloatArray, cand: FloatArray, u_canary: float) -> float:
    if kind == "rank_biserial":
        return 2.0 * u_canary / (cand.size * base.size) - 1.0
    centre = np.mean if kind == "mean" else np.median
    level_b, level_c = float(centre(base)), float(centre(cand))
    if level_b == 0.0:
        return 0.0 if level_c == 0.0 else math.copysign(math.inf, level_c)
    return (level_c - level_b) / abs(level_b)


def judge(
    baseline: Observations,
    canary: Observations,
    metrics: Sequence[MetricSpec] = DEFAULT_METRICS,
    config: JudgeConfig | None = None,
) -> Judgement:
    """Compare every metric and classify the canary (see the module doc for the rules)."""
    config = config or JudgeConfig()
    if not metrics:
        raise CanaryError("a canary judgement needs at least one metric")
    results = tuple(
        compare_metric(
            spec,
            baseline.values(spec.source),
            canary.values(spec.source),
            min_samples=config.min_samples,
        )
        for spec in metrics
    )
    n_b, n_c = baseline.requests, canary.requests

    def verdict(kind: Verdict, score: float | None, reason: str) -> Judgement:
        return Judgement(kind, score, reason, n_b, n_c, results)

    if min(n_b, n_c) < config.min_samples:
        return verdict(
            "inconclusive",
            None,
            f"{NOT_ENOUGH_DATA}: the canary has {n_c} requests and the baseline {n_b} in "
            f"this window; each needs at least {config.min_samples} before it can be judged",
        )
    scored = [r for r in results if r.outcome != "nodata"]
    if not scored:
        return verdict("inconclusive", None, f"{NOT_ENOUGH_DATA}: no metric has enough samples")
    passed = math.fsum(r.weight for r in scored if not r.failed)
    score = 100.0 * passed / math.fsum(r.weight for r in scored)
    failed = [r.name for r in scored if r.failed]
    critical = [r.name for r in scored if r.failed and r.critical]
    if critical:
        return verdict("fail", score, f"critical metric(s) failed: {', '.join(critical)}")
    if score < config.marginal_score:
        return verdict(
            "fail",
            score,
            f"score {score:.1f} < marginal {config.marginal_score:g}; failed: {', '.join(failed)}",
        )
    unmeasured = [r.name for r in results if r.critical and r.outcome == "nodata"]
    if unmeasured:
        return verdict(
            "inconclusive",
            score,
            f"{NOT_ENOUGH_DATA} for critical metric(s) {', '.join(unmeasured)}",
        )
    if score >= config.pass_score:
        return verdict("pass", score, f"score {score:.1f} >= {config.pass_score:g}")
    return verdict(
        "inconclusive",
        score,
        f"score {score:.1f} is marginal ({config.marginal_score:g} <= score < "
        f"{config.pass_score:g}); failed: {', '.join(failed)}",
    )
