"""The canary judge against scipy and by its scoring rules (pure: no store)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from mlgate.errors import CanaryError
from mlgate.experiments.canary import (
    DEFAULT_METRICS,
    CanaryConfig,
    JudgeConfig,
    MetricSpec,
    Observations,
    judge,
)
from mlgate.experiments.canary.judge import compare_metric


def _latency(
    n: int, scale: float = 1.0, rng: np.random.Generator | None = None
) -> np.ndarray[Any, Any]:
    rng = rng or np.random.default_rng(n)  # a fixed sample per size: order-independent
    return rng.lognormal(mean=math.log(20.0 * scale), sigma=0.3, size=n)


def _sides(n: int = 400, seed: int = 7, **canary: Any) -> tuple[Observations, Observations]:
    """A healthy baseline and a canary that differs as told (same distributions otherwise).

    Seeded per call, so that no test depends on the order the others ran in.
    """
    rng = np.random.default_rng(seed)
    error_rate = canary.get("error_rate", 0.01)
    baseline = Observations.of(
        errors=rng.random(n) < 0.01,
        latency_ms=_latency(n, rng=rng),
        predictions=rng.normal(0.5, 0.1, n),
        rewards=rng.random(n) < 0.3,
    )
    candidate = Observations.of(
        errors=rng.random(n) < error_rate,
        latency_ms=_latency(n, canary.get("latency_scale", 1.0), rng),
        predictions=rng.normal(canary.get("prediction_mean", 0.5), 0.1, n),
        rewards=rng.random(n) < canary.get("reward_rate", 0.3),
    )
    return baseline, candidate


def test_the_p_value_is_scipys_two_sided_mann_whitney_and_the_summary_numpys() -> None:
    base, cand = _latency(300), _latency(200, 1.3)
    result = compare_metric(DEFAULT_METRICS[1], base, cand, min_samples=50)
    expected = mannwhitneyu(cand, base, alternative="two-sided")
    assert result.p_value == pytest.approx(float(expected.pvalue), rel=1e-12)
    assert result.effect == pytest.approx((np.median(cand) - np.median(base)) / np.median(base))
    assert result.canary.n == 200 and result.baseline.n == 300
    p50, p90, p99 = np.percentile(cand, [50, 90, 99])
    assert (result.canary.median, result.canary.p90, result.canary.p99) == pytest.approx(
        (p50, p90, p99)
    )
    assert result.outcome == "high"  # 30% slower, significant, beyond the 10% tolerance


def test_rank_biserial_effect_is_two_u_over_n_squared_minus_one() -> None:
    rng = np.random.default_rng(3)
    base, cand = rng.normal(0, 1, 200), rng.normal(0.8, 1, 150)
    spec = MetricSpec("drift", "prediction", harm="either", tolerance=0.3)
    result = compare_metric(spec, base, cand, min_samples=50)
    u = mannwhitneyu(cand, base, alternative="two-sided").statistic
    assert result.effect == pytest.approx(2 * u / (150 * 200) - 1)
    assert result.outcome == "high"
    lower = compare_metric(spec, base, rng.normal(-0.8, 1, 150), min_samples=50)
    assert lower.outcome == "low"  # "either": a shift down is as bad as one up


def test_a_significant_but_small_difference_passes_within_its_tolerance() -> None:
    base, cand = _latency(20_000), _latency(20_000, 1.03)
    result = compare_metric(DEFAULT_METRICS[1], base, cand, min_samples=50)
    assert result.p_value is not None and result.p_value < 1e-6
    assert result.outcome == "pass" and "tolerance" in result.reason


def test_a_harmless_direction_passes_however_significant() -> None:
    base, cand = _latency(500), _latency(500, 0.5)  # twice as fast
    result = compare_metric(DEFAULT_METRICS[1], base, cand, min_samples=50)
    assert result.p_value is not None and result.p_value < 1e-10
    assert result.outcome == "pass"


def test_errors_over_a_baseline_without_any_fail_with_an_unbounded_effect() -> None:
    result = compare_metric(
        DEFAULT_METRICS[0], np.zeros(300), np.r_[np.ones(30), np.zeros(270)], min_samples=50
    )
    assert result.outcome == "high" and result.effect is None  # relative to 0: infinite
    same = compare_metric(DEFAULT_METRICS[0], np.zeros(300), np.zeros(300), min_samples=50)
    assert same.outcome == "pass" and same.p_value == 1.0 and same.effect == 0.0


def test_a_healthy_canary_passes_with_a_full_score() -> None:
    baseline, canary = _sides()
    verdict = judge(baseline, canary)
    assert verdict.verdict == "pass" and verdict.score == 100.0
    assert [m.outcome for m in verdict.metrics] == ["pass"] * 4


def test_a_critical_metric_failing_fails_whatever_the_score() -> None:
    baseline, canary = _sides(error_rate=0.15)
    others = tuple(MetricSpec(f"m{i}", "latency", tolerance=0.5) for i in range(20))
    verdict = judge(baseline, canary, (DEFAULT_METRICS[0], *others))
    assert verdict.score == pytest.approx(100 * 20 / 21)
    assert verdict.verdict == "fail" and "critical" in verdict.reason


@pytest.mark.parametrize(
    ("weights", "expected_score", "expected_verdict"),
    [
        ((1.0, 1.0, 1.0, 1.0), 75.0, "inconclusive"),  # one of four fails: marginal
        ((1.0, 3.0, 1.0, 1.0), 50.0, "fail"),  # the failing one weighs 3 of 6
        ((1.0, 1.0, 38.0, 1.0), 100 * 40 / 41, "pass"),  # above 95
    ],
)
def test_the_score_is_the_weighted_share_of_passing_metrics(
    weights: tuple[float, ...], expected_score: float, expected_verdict: str
) -> None:
    baseline, canary = _sides(latency_scale=1.5)  # only latency fails
    metrics = (
        MetricSpec("errors", "error_rate", weight=weights[0]),
        MetricSpec("latency", "latency", weight=weights[1]),
        MetricSpec("drift", "prediction", harm="either", tolerance=0.3, weight=weights[2]),
        MetricSpec("reward", "reward", harm="decrease", weight=weights[3]),
    )
    verdict = judge(baseline, canary, metrics)
    passing = weights[0] + weights[2] + weights[3]
    assert verdict.score == pytest.approx(100 * passing / sum(weights))
    assert verdict.score == pytest.approx(expected_score)
    assert verdict.verdict == expected_verdict


def test_thresholds_are_configurable() -> None:
    baseline, canary = _sides(latency_scale=1.5)
    lenient = JudgeConfig(pass_score=70.0, marginal_score=50.0)
    assert judge(baseline, canary, DEFAULT_METRICS, lenient).verdict == "pass"
    strict = JudgeConfig(pass_score=100.0, marginal_score=100.0)
    assert judge(baseline, canary, DEFAULT_METRICS, strict).verdict == "fail"


@pytest.mark.parametrize("canary_requests", [0, 1, 49])
def test_too_few_requests_is_not_enough_data_never_a_verdict(canary_requests: int) -> None:
    baseline, _ = _sides()
    # Even a canary that fails every request it served is not judged on so little.
    canary = Observations.of(
        errors=np.ones(canary_requests), latency_ms=np.full(canary_requests, 1e4)
    )
    verdict = judge(baseline, canary)
    assert verdict.verdict == "inconclusive" and verdict.score is None
    assert not verdict.enough_data
    assert verdict.reason.startswith("not enough data")
    assert f"canary has {canary_requests} requests" in verdict.reason
    assert {m.outcome for m in verdict.metrics} == {"nodata"}


def test_metrics_without_data_are_left_out_of_the_score() -> None:
    baseline, canary = _sides()
    canary = Observations.of(errors=canary.errors, latency_ms=canary.latency_ms)  # no feedback
    verdict = judge(baseline, canary)
    outcomes = {m.name: m.outcome for m in verdict.metrics}
    assert outcomes == {
        "error_rate": "pass",
        "latency": "pass",
        "prediction_drift": "nodata",
        "reward": "nodata",
    }
    assert verdict.verdict == "pass" and verdict.score == 100.0


def test_a_critical_metric_without_data_leaves_the_verdict_open() -> None:
    baseline, canary = _sides()
    canary = Observations.of(errors=canary.errors, latency_ms=canary.latency_ms)
    metrics = (*DEFAULT_METRICS[:3], MetricSpec("reward", "reward", "decrease", critical=True))
    verdict = judge(baseline, canary, metrics)
    assert verdict.verdict == "inconclusive" and "critical metric(s) reward" in verdict.reason


def test_a_lower_reward_fails_its_metric() -> None:
    baseline, canary = _sides(n=2000, reward_rate=0.15)
    rewards = next(m for m in judge(baseline, canary).metrics if m.name == "reward")
    assert rewards.outcome == "low"


def test_judgements_are_strict_json() -> None:
    baseline = Observations.of(errors=np.zeros(100), latency_ms=np.full(100, 5.0))
    canary = Observations.of(errors=np.ones(100), latency_ms=np.full(100, 5.0))
    document = judge(baseline, canary).to_json()
    text = json.dumps(document, allow_nan=False)
    assert json.loads(text)["metrics"][0]["effect"] is None


def test_non_finite_samples_are_dropped() -> None:
    found = Observations.of(latency_ms=[1.0, math.nan, math.inf, 2.0])
    assert found.latency_ms.tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"source": "cpu"}, "source must be one of"),
        ({"harm": "up"}, "harm must be one of"),
        ({"tolerance": -0.1}, "tolerance must be a number >= 0"),
        ({"weight": 0}, "weight must be a number above 0"),
        ({"alpha": 1.5}, "alpha must be in (0, 1)"),
        ({"effect": "ratio"}, "effect must be one of"),
    ],
)
def test_bad_metric_specs_say_what_to_change(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(CanaryError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        MetricSpec.from_json({"name": "m", "source": "latency", **fields})


def test_metric_specs_reject_unknown_fields() -> None:
    with pytest.raises(CanaryError, match="unknown fields"):
        MetricSpec.from_json({"name": "m", "source": "latency", "treshold": 1})


@pytest.mark.parametrize(
    ("steps", "fragment"),
    [
        ((), "list of percentages"),
        ((5, 5, 100), "strictly increasing"),
        ((50, 25, 100), "strictly increasing"),
        ((0, 50, 100), r"in \(0, 100\]"),
        ((5, 25, 50), "last canary step must be 100"),
        ((100,), "at least one step below 100"),
        ((5, 150), r"in \(0, 100\]"),
        (("5", 100), "list of percentages"),
    ],
)
def test_bad_steps_are_refused(steps: tuple[Any, ...], fragment: str) -> None:
    with pytest.raises(CanaryError, match=fragment):
        CanaryConfig(steps=steps)


@pytest.mark.parametrize(
    "fields",
    [
        {"interval_s": 0},
        {"failure_limit": 0},
        {"inconclusive_limit": 1.5},
        {"metrics": []},
        {"promote_alias": "Not An Alias"},
        {"sticky_key": ""},
        {"judge": {"pass_score": 50, "marginal_score": 80}},
        {"judge": {"min_samples": 1}},
        {"stepz": [5, 100]},
    ],
)
def test_bad_settings_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(CanaryError):
        CanaryConfig.from_json(fields)


@given(
    steps=st.lists(st.integers(1, 99), min_size=1, max_size=5, unique=True).map(
        lambda s: (*sorted(s), 100)
    ),
    interval_s=st.floats(1.0, 1e5),
    failure_limit=st.integers(1, 5),
    tolerance=st.floats(0.0, 2.0),
    critical=st.booleans(),
    sticky=st.none() | st.just("user"),
)
def test_settings_round_trip_through_json(
    steps: tuple[int, ...],
    interval_s: float,
    failure_limit: int,
    tolerance: float,
    critical: bool,
    sticky: str | None,
) -> None:
    config = CanaryConfig(
        steps=steps,
        interval_s=interval_s,
        failure_limit=failure_limit,
        metrics=(MetricSpec("lat", "latency", tolerance=tolerance, critical=critical),),
        sticky_key=sticky,
    )
    text = json.dumps(config.to_json(), allow_nan=False)
    assert CanaryConfig.from_json(json.loads(text)) == config


def test_latency_needs_an_absolute_difference_too() -> None:
    """+40 % at 0.3 ms is real but harmless; +40 % at 30 ms is a failure."""
    rng = np.random.default_rng(11)
    spec = next(m for m in DEFAULT_METRICS if m.name == "latency")
    fast_base, fast_cand = rng.gamma(4.0, 0.075, 2_000), rng.gamma(4.0, 0.105, 2_000)
    small = compare_metric(spec, fast_base, fast_cand, min_samples=50)
    assert small.p_value is not None and small.p_value < 1e-6
    assert small.outcome == "pass", small.reason
    slow = compare_metric(spec, fast_base * 100, fast_cand * 100, min_samples=50)
    assert slow.outcome == "high", slow.reason
    with pytest.raises(CanaryError, match="min_difference"):
        MetricSpec("latency", "latency", min_difference=-1.0)
