"""Evaluating gates end to end: each check's verdict and numbers, composites, bad inputs."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import mlgate.loop.gates as gates
from mlgate.errors import GateError
from mlgate.loop.gates import (
    CheckResult,
    GateInputs,
    GateReport,
    Predictions,
    evaluate_gate,
    parse_gate,
)

N = 1000


def _model(y: np.ndarray, accuracy: float, seed: int) -> Predictions:
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(len(y)) < accuracy, y, 1 - y)
    p1 = np.clip(np.where(labels == 1, 0.75, 0.25) + rng.normal(0, 0.15, len(y)), 0.01, 0.99)
    return Predictions(labels, np.column_stack([1 - p1, p1]), np.array([0, 1]))


def _inputs(cand_acc: float = 0.9, champ_acc: float | None = 0.8, **extra: Any) -> GateInputs:
    y = np.random.default_rng(0).integers(0, 2, N)
    champion = None if champ_acc is None else _model(y, champ_acc, 2)
    return GateInputs("classification", y, _model(y, cand_acc, 1), champion, **extra)


def _one(spec: Any, inputs: GateInputs, seed: int = 0) -> CheckResult:
    report = evaluate_gate(parse_gate(spec), inputs, seed=seed)
    (check,) = report.checks
    assert report.passed == check.passed
    return check


def test_no_gate_promotes_nothing() -> None:
    report = evaluate_gate(None, _inputs())
    assert not report.passed
    assert [(c.kind, c.passed) for c in report.checks] == [("no_gate", False)]
    assert "nothing is promoted" in report.summary()
    assert report.to_json()["gate"] is None


def test_metric_threshold_pass_and_fail_with_numbers() -> None:
    ok = _one({"metric": {"name": "accuracy", "min": 0.85}}, _inputs())
    assert ok.passed and ok.threshold == 0.85 and ok.value == pytest.approx(0.9, abs=0.03)
    bad = _one({"metric": {"name": "accuracy", "min": 0.95}}, _inputs())
    assert not bad.passed and bad.threshold == 0.95
    assert "below the minimum 0.95" in bad.message and "retrain" in bad.message
    loss = _one({"metric": {"name": "log_loss", "max": 0.01}}, _inputs())
    assert not loss.passed and "above the maximum 0.01" in loss.message


def test_vs_champion_absolute_relative_and_direction() -> None:
    better = _one({"vs_champion": {"metric": "accuracy", "min_delta": 0.05}}, _inputs())
    assert better.passed
    assert better.value == pytest.approx(better.details["candidate"] - better.details["champion"])
    worse = _one({"vs_champion": {"metric": "accuracy"}}, _inputs(0.8, 0.9))
    assert not worse.passed and worse.value is not None and worse.value < 0
    tolerated = _one({"vs_champion": {"metric": "accuracy", "min_delta": -0.2}}, _inputs(0.8, 0.9))
    assert tolerated.passed
    # A loss: lower is better, so a candidate with lower log_loss has a positive delta.
    loss = _one({"vs_champion": {"metric": "log_loss", "relative": True}}, _inputs())
    assert loss.passed and loss.value is not None and loss.value > 0
    d = loss.details
    assert loss.value == pytest.approx((d["champion"] - d["candidate"]) / d["champion"])


def test_champion_checks_pass_skipped_when_there_is_no_champion() -> None:
    spec = [
        {"vs_champion": {"metric": "accuracy"}},
        {"significance": {"metric": "accuracy", "test": "mcnemar"}},
        {"significance": {"metric": "roc_auc"}},
        {"slices": {"column": "country", "metric": "accuracy"}},
    ]
    country = np.array(["DE"] * N, dtype=object)
    report = evaluate_gate(parse_gate(spec), _inputs(champ_acc=None, slices={"country": country}))
    assert report.passed
    assert all(c.skipped and "no champion" in c.message for c in report.checks)
    assert report.summary() == "gate passed: 4 of 4 checks passed (4 skipped)"


def test_significance_mcnemar_and_bootstrap() -> None:
    mc = _one({"significance": {"metric": "accuracy", "test": "mcnemar"}}, _inputs())
    assert mc.passed and mc.value is not None and mc.value < 1e-6
    assert mc.details["candidate_wins"] > mc.details["champion_wins"]  # type: ignore[operator]
    same = _one({"significance": {"metric": "accuracy", "test": "mcnemar"}}, _inputs(0.8, 0.8))
    assert not same.passed and "may be noise" in same.message
    boot = _one({"significance": {"metric": "roc_auc", "n_resamples": 200}}, _inputs())
    assert boot.passed and boot.value == boot.details["ci_low"] and boot.threshold == 0.0
    assert boot.details["ci_low"] <= boot.details["observed_delta"] <= boot.details["ci_high"]  # type: ignore[operator]
    flat = _one({"significance": {"metric": "f1", "n_resamples": 200}}, _inputs(0.8, 0.8))
    assert not flat.passed


def test_identical_models_never_pass_significance() -> None:
    i = _inputs()
    same = GateInputs("classification", i.y_true, i.candidate, i.candidate)
    for spec in ({"metric": "accuracy", "test": "mcnemar"}, {"metric": "log_loss"}):
        check = _one({"significance": spec}, same)
        assert not check.passed


def test_slices_fail_on_a_segment_that_regresses_and_skip_small_ones() -> None:
    i = _inputs()
    country = np.array(["DE", "FR"] * (N // 2), dtype=object)
    country[:10] = "LU"
    # The candidate is the champion everywhere except FR, where it is always wrong.
    fr = country == "FR"
    labels = np.where(fr, 1 - i.y_true, i.champion.labels)  # type: ignore[union-attr]
    inputs = GateInputs(
        "classification", i.y_true, Predictions(labels), i.champion, {"country": country}
    )
    check = _one({"slices": {"column": "country", "metric": "accuracy", "max_drop": 0.05}}, inputs)
    assert not check.passed
    by_path = {c.path: c for c in check.children}
    assert not by_path["slices[country=FR]"].passed
    assert by_path["slices[country=DE]"].passed and by_path["slices[country=DE]"].value == 0.0
    assert by_path["slices[country=LU]"].skipped and by_path["slices[country=LU]"].passed
    assert check.details == {
        "segments": 3,
        "judged": 2,
        "failed": 1,
        "skipped": 1,
        "worst_drop": check.value,
    }
    assert "in 1 of 2 segments (country=FR; worst drop 0.8" in check.message


def test_slice_column_not_given_is_a_gate_error() -> None:
    with pytest.raises(GateError, match="slice column 'country' was not given"):
        evaluate_gate(parse_gate({"slices": {"column": "country", "metric": "f1"}}), _inputs())


def test_slice_with_undefined_metric_is_skipped_but_nan_predictions_fail() -> None:
    i = _inputs()
    seg = np.where(np.arange(N) < 500, "a", "b").astype(object)
    y = i.y_true.copy()
    y[:500] = 1  # roc_auc is undefined in segment a (one class)
    spec = {"slices": {"column": "seg", "metric": "roc_auc"}}
    check = _one(spec, GateInputs("classification", y, i.candidate, i.champion, {"seg": seg}))
    a = next(c for c in check.children if c.path.endswith("[seg=a]"))
    assert a.skipped and "undefined" in a.message
    proba = i.candidate.probabilities.copy()  # type: ignore[union-attr]
    proba[600] = np.nan
    nan_cand = Predictions(i.candidate.labels, proba, i.candidate.classes)
    check = _one(spec, GateInputs("classification", i.y_true, nan_cand, i.champion, {"seg": seg}))
    assert not check.passed
    b = next(c for c in check.children if c.path.endswith("[seg=b]"))
    assert not b.passed and "NaN" in b.message
    everywhere = Predictions(np.full(N, np.nan), None)
    check = _one(spec, GateInputs("classification", i.y_true, everywhere, i.champion, {"seg": seg}))
    assert not check.passed and check.value is None and "worst drop unknown" in check.message


def test_latency_budget_increase_and_missing_measurements() -> None:
    lat = list(np.linspace(1, 10, 100))
    ok = _one({"latency": {"p99_ms": 20}}, _inputs(candidate_latency_ms=lat))
    assert ok.passed and ok.value == pytest.approx(np.percentile(lat, 99))
    slow = _one({"latency": {"p99_ms": 5}}, _inputs(candidate_latency_ms=lat))
    assert not slow.passed and "above the budget of 5 ms" in slow.message
    missing = _one({"latency": {"p99_ms": 5}}, _inputs())
    assert not missing.passed and "not measured" in missing.message
    nan = _one({"latency": {"p99_ms": 5}}, _inputs(candidate_latency_ms=[1.0, float("nan")]))
    assert not nan.passed
    spec = {"latency": {"max_increase_ms": 1}}
    more = _one(spec, _inputs(candidate_latency_ms=lat, champion_latency_ms=[1.0] * 10))
    assert not more.passed and more.details["increase_ms"] == pytest.approx(more.value - 1.0)  # type: ignore[operator]
    no_base = _one(spec, _inputs(candidate_latency_ms=lat))
    assert not no_base.passed and "champion's latency was not measured" in no_base.message
    first = _one(spec, _inputs(champ_acc=None, candidate_latency_ms=lat))
    assert first.passed


def test_size_budget() -> None:
    assert _one({"size": {"max_mb": 50}}, _inputs(candidate_size_bytes=49_000_000)).passed
    big = _one({"size": {"max_mb": 50}}, _inputs(candidate_size_bytes=51_000_000))
    assert not big.passed and big.value == 51.0 and big.details == {"bytes": 51_000_000}
    assert not _one({"size": {"max_mb": 50}}, _inputs()).passed


def _sig(inputs: list[tuple[str, str, tuple[int, ...]]], outputs: list[tuple[str, str]]) -> Any:
    from mlgate.registry.signature import Signature, TensorSpec

    return Signature(
        tuple(TensorSpec(n, d, s) for n, d, s in inputs),
        tuple(TensorSpec(n, d, (-1,)) for n, d in outputs),
    )


def test_signature_compatibility() -> None:
    endpoint = _sig([("input", "FP64", (-1, 4))], [("label", "INT64"), ("proba", "FP32")])

    def check(candidate: Any, spec: Any = None) -> CheckResult:
        sig = _inputs(candidate_signature=candidate, endpoint_signature=endpoint)
        return _one({"signature": spec}, sig)

    assert check(endpoint).passed
    assert check(
        _sig([("input", "FP64", (-1, -1))], [("label", "INT64"), ("proba", "FP32")])
    ).passed
    narrower = check(_sig([("input", "FP64", (1, 4))], [("label", "INT64"), ("proba", "FP32")]))
    assert not narrower.passed and "does not accept the endpoint's [-1, 4]" in narrower.message
    wider = check(_sig([("input", "FP64", (-1, 5))], [("label", "INT64"), ("proba", "FP32")]))
    assert not wider.passed
    retyped = check(_sig([("input", "FP32", (-1, 4))], [("label", "INT64"), ("proba", "FP32")]))
    assert not retyped.passed and "input 'input' is FP32, the endpoint's is FP64" in retyped.message
    renamed = check(_sig([("x", "FP64", (-1, 4))], [("label", "INT64"), ("proba", "FP32")]))
    assert not renamed.passed and "input 'input' is gone" in renamed.message
    no_proba = _sig([("input", "FP64", (-1, 4))], [("label", "INT64")])
    assert not check(no_proba).passed
    assert check(no_proba, {"outputs": ["label"]}).passed
    assert not check(no_proba, {"outputs": ["score"]}).passed
    assert not check(None).passed
    first = _one({"signature": {}}, _inputs())
    assert first.passed and first.skipped


def test_any_of_and_all_of_compose_and_summary_names_the_causes() -> None:
    spec = {
        "all_of": [
            {"metric": {"name": "accuracy", "min": 0.5}},
            {"any_of": [{"size": {"max_mb": 1}}, {"metric": {"name": "f1", "min": 0.99}}]},
            {"size": {"max_mb": 100}},
        ]
    }
    report = evaluate_gate(parse_gate(spec), _inputs(candidate_size_bytes=2_000_000))
    assert not report.passed
    assert [c.path for c in report.checks] == [
        "all_of[0].metric",
        "all_of[1].any_of[0].size",
        "all_of[1].any_of[1].metric",
        "all_of[2].size",
    ]
    assert [c.path for c in report.failures] == [
        "all_of[1].any_of[0].size",
        "all_of[1].any_of[1].metric",
    ]
    f1 = report.failures[1].value
    assert report.summary() == (
        "gate failed: 2 of 4 checks failed: all_of[1].any_of[0].size 2 against 1; "
        f"all_of[1].any_of[1].metric {f1:.4g} against 0.99"
    )
    assert (report.tree.value, report.tree.threshold) == (2.0, 3.0)
    spec["all_of"][1]["any_of"][0]["size"]["max_mb"] = 5  # type: ignore[index]
    report = evaluate_gate(parse_gate(spec), _inputs(candidate_size_bytes=2_000_000))
    assert report.passed and report.failures == ()
    assert report.summary() == "gate passed: 4 of 4 checks passed"


def test_nan_predictions_fail_checks_never_a_nan_verdict() -> None:
    i = _inputs()
    labels = i.candidate.labels.astype(float)
    labels[3] = np.nan
    inputs = GateInputs("classification", i.y_true, Predictions(labels), i.champion)
    spec = [
        {"metric": {"name": "accuracy", "min": 0.1}},
        {"vs_champion": {"metric": "f1", "min_delta": -1}},
        {"significance": {"metric": "accuracy", "test": "mcnemar"}},
        {"significance": {"metric": "balanced_accuracy"}},
    ]
    report = evaluate_gate(parse_gate(spec), inputs)
    assert not report.passed
    for check in report.checks:
        assert not check.passed and "NaN" in check.message and check.value is None
    json.dumps(report.to_json(), allow_nan=False)


def test_roc_auc_without_probabilities_fails_saying_why() -> None:
    i = _inputs()
    inputs = GateInputs("classification", i.y_true, Predictions(i.candidate.labels))
    check = _one({"metric": {"name": "roc_auc", "min": 0.5}}, inputs)
    assert not check.passed and "needs class probabilities" in check.message


def test_roc_auc_on_an_all_one_class_holdout_fails_saying_why() -> None:
    y = np.ones(50, dtype=int)
    cand = Predictions(y, np.full((50, 2), 0.5), np.array([0, 1]))
    check = _one({"metric": {"name": "roc_auc", "min": 0.5}}, GateInputs("classification", y, cand))
    assert not check.passed and "classes in the holdout" in check.message


def test_regression_gate() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=400)
    cand, champ = Predictions(y + rng.normal(0, 0.1, 400)), Predictions(y + rng.normal(0, 0.5, 400))
    spec = [
        {"metric": {"name": "rmse", "max": 0.2}},
        {"metric": {"name": "r2", "min": 0.9}},
        {"vs_champion": {"metric": "mae", "min_delta": 0.1}},
        {"significance": {"metric": "rmse"}},
    ]
    report = evaluate_gate(
        parse_gate(spec, task="regression"), GateInputs("regression", y, cand, champ)
    )
    assert report.passed, report.summary()


def test_metric_of_the_wrong_task_is_a_gate_error() -> None:
    with pytest.raises(GateError, match="regression metric"):
        evaluate_gate(parse_gate({"metric": {"name": "rmse", "max": 1}}), _inputs())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: GateInputs("classification", np.array([]), Predictions(np.array([]))),
            "at least one",
        ),
        (
            lambda: GateInputs("classification", np.array([0, 1]), Predictions(np.array([0]))),
            "1 predictions for 2 holdout rows",
        ),
        (
            lambda: GateInputs(
                "classification",
                np.array([0, 1]),
                Predictions(np.array([0, 1])),
                Predictions(np.array([0, 1, 1])),
            ),
            "champion has 3 predictions",
        ),
        (
            lambda: GateInputs(
                "regression", np.array([0.5, np.nan]), Predictions(np.array([0.0, 1]))
            ),
            "y_true has 1 missing",
        ),
        (
            lambda: GateInputs(
                "classification", np.array([0, None], dtype=object), Predictions(np.array([0, 1]))
            ),
            "y_true has 1 missing",
        ),
        (
            lambda: GateInputs("clustering", np.array([0]), Predictions(np.array([0]))),  # type: ignore[arg-type]
            "task must be one of",
        ),
        (
            lambda: GateInputs(
                "classification",
                np.array([0, 1]),
                Predictions(np.array([0, 1])),
                slices={"c": np.array(["a"])},
            ),
            "slice column 'c'",
        ),
        (lambda: Predictions(np.array([0, 1]), np.ones((3, 2))), "one row per label"),
        (
            lambda: Predictions(np.array([0, 1]), np.ones((2, 2)) / 2, np.array([0, 1, 2])),
            "classes",
        ),
        (lambda: Predictions(np.array([0, 1]), np.ones((2, 2)) / 2, np.array([1, 1])), "distinct"),
        (
            lambda: GateInputs(
                "classification",
                np.array([0, 1]),
                Predictions(np.array([0, 1])),
                candidate_size_bytes=-1,
            ),
            "candidate_size_bytes",
        ),
        (
            lambda: GateInputs("regression", np.array(["a"]), Predictions(np.array([0.0]))),
            "numeric",
        ),
    ],
)
def test_structurally_unusable_inputs_are_gate_errors(make: Any, message: str) -> None:
    with pytest.raises(GateError, match=message):
        make()


def test_report_json_round_trip_digest_and_determinism() -> None:
    spec = [
        {"metric": {"name": "accuracy", "min": 0.8}},
        {"significance": {"metric": "roc_auc", "n_resamples": 300}},
        {"slices": {"column": "c", "metric": "accuracy", "max_drop": 0.05}},
    ]
    c = np.array(["x", "y", "z", "w"] * (N // 4), dtype=object)
    inputs = _inputs(slices={"c": c})
    report = evaluate_gate(parse_gate(spec), inputs, seed=7)
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert data["format"] == "mlgate.gate_report/1" and data["seed"] == 7
    again = GateReport.from_json(data)
    assert again == report and again.digest() == report.digest()
    assert report.digest().startswith("sha256:") and len(report.digest()) == 71
    assert evaluate_gate(parse_gate(spec), inputs, seed=7).digest() == report.digest()
    other = evaluate_gate(parse_gate(spec), inputs, seed=8)
    assert other.tree.children[1].details != report.tree.children[1].details
    with pytest.raises(GateError, match="not a gate report"):
        GateReport.from_json({"format": "something else"})


def test_public_surface_is_pinned() -> None:
    assert sorted(gates.__all__) == sorted(
        [
            "METRICS",
            "AllOf",
            "AnyOf",
            "ChampionCheck",
            "CheckResult",
            "Gate",
            "GateInputs",
            "GateReport",
            "LatencyCheck",
            "Metric",
            "MetricCheck",
            "Node",
            "Predictions",
            "SignatureCheck",
            "SignificanceCheck",
            "SizeCheck",
            "SliceCheck",
            "Task",
            "evaluate_gate",
            "parse_gate",
            "signature_problems",
        ]
    )
