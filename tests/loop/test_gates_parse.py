"""Reading ``gates:`` from YAML: shapes, defaults, round trips and precise errors."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgate.errors import LoopConfigError
from mlgate.loop.gates import (
    AllOf,
    AnyOf,
    ChampionCheck,
    Gate,
    LatencyCheck,
    MetricCheck,
    SignatureCheck,
    SignificanceCheck,
    SizeCheck,
    SliceCheck,
    parse_gate,
)

FULL = """
gates:
  all_of:
    - metric: {name: accuracy, min: 0.80}
    - vs_champion: {metric: accuracy, min_delta: 0.0}
    - significance: {metric: accuracy, test: mcnemar, alpha: 0.05}
    - significance: {metric: roc_auc, test: bootstrap, n_resamples: 500}
    - slices: {column: country, metric: accuracy, max_drop: 0.02, min_rows: 30}
    - latency: {p99_ms: 20}
    - size: {max_mb: 50}
    - signature: {}
    - any_of:
        - metric: {name: f1, min: 0.7}
        - vs_champion: {metric: log_loss, min_delta: -0.05, relative: true}
"""


def _gates(text: str) -> Any:
    return yaml.safe_load(text)["gates"]


def test_full_example_parses_into_the_tree() -> None:
    gate = parse_gate(_gates(FULL))
    assert gate == Gate(
        AllOf(
            (
                MetricCheck("accuracy", min=0.8),
                ChampionCheck("accuracy", 0.0),
                SignificanceCheck("accuracy", "mcnemar", alpha=0.05),
                SignificanceCheck("roc_auc", "bootstrap", n_resamples=500),
                SliceCheck("country", "accuracy", 0.02, 30),
                LatencyCheck(p99_ms=20),
                SizeCheck(50),
                SignatureCheck(),
                AnyOf(
                    (MetricCheck("f1", min=0.7), ChampionCheck("log_loss", -0.05, relative=True))
                ),
            )
        )
    )
    assert gate is not None
    assert gate.slice_columns == ("country",)
    assert gate.metric_names == ("accuracy", "roc_auc", "f1", "log_loss")


def test_round_trip_through_to_json_and_yaml() -> None:
    gate = parse_gate(_gates(FULL))
    assert gate is not None
    again = parse_gate(yaml.safe_load(yaml.safe_dump(gate.to_json())))
    assert again == gate
    assert again.to_json() == gate.to_json()


def test_defaults_are_spelled_out_in_to_json() -> None:
    gate = parse_gate(
        [{"significance": {"metric": "f1"}}, {"slices": {"column": "c", "metric": "f1"}}]
    )
    assert gate is not None
    assert gate.to_json() == {
        "all_of": [
            {
                "significance": {
                    "metric": "f1",
                    "test": "bootstrap",
                    "confidence": 0.95,
                    "n_resamples": 1000,
                }
            },
            {"slices": {"column": "c", "metric": "f1", "max_drop": 0.0, "min_rows": 30}},
        ]
    }


@pytest.mark.parametrize("empty", [None, {}, []])
def test_nothing_configured_is_no_gate(empty: object) -> None:
    assert parse_gate(empty) is None


def test_a_bare_list_is_all_of_and_a_single_check_stands_alone() -> None:
    assert parse_gate([{"size": {"max_mb": 1}}]) == Gate(AllOf((SizeCheck(1.0),)))
    assert parse_gate({"size": {"max_mb": 1}}) == Gate(SizeCheck(1.0))
    assert parse_gate({"signature": None}) == Gate(SignatureCheck())


def test_nested_any_depth() -> None:
    data: Any = {"metric": {"name": "accuracy", "min": 0.5}}
    for depth in range(6):
        data = {"any_of" if depth % 2 else "all_of": [data]}
    gate = parse_gate(data)
    assert gate is not None and list(gate.leaves()) == [MetricCheck("accuracy", min=0.5)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"all_of": [{"metric": {"name": "acc", "min": 0.8}}]},
            r"gates\.all_of\[0\]\.metric\.name: unknown metric 'acc'; known metrics are accuracy, "
            r"balanced_accuracy, f1, roc_auc, log_loss, brier, rmse, mae, r2",
        ),
        (
            {
                "all_of": [
                    {"size": {"max_mb": 1}},
                    {"size": {"max_mb": 1}},
                    {"vs_champion": {"metric": "nope"}},
                ]
            },
            r"gates\.all_of\[2\]\.vs_champion\.metric: unknown metric 'nope'",
        ),
        (
            {"all_of": [{"metric": {"name": "accuracy", "minimum": 0.8}}]},
            r"gates\.all_of\[0\]\.metric: unknown setting minimum; metric takes name, min, max",
        ),
        (
            {"metric": {"name": "accuracy", "min": 0.9, "max": 0.8}},
            r"gates\.metric\.min: min 0\.9 is above max 0\.8",
        ),
        ({"metric": {"name": "accuracy"}}, r"gates\.metric\.min: give min, max or both"),
        ({"metric": {"min": 0.8}}, r"gates\.metric\.name: required"),
        (
            {"metric": {"name": "accuracy", "min": "0.8"}},
            r"gates\.metric\.min: expected a finite number, found '0\.8'",
        ),
        ({"metric": {"name": "accuracy", "min": True}}, r"expected a finite number, found True"),
        (
            {"significance": {"metric": "accuracy", "test": "mcnemar", "alpha": 1.0}},
            r"gates\.significance\.alpha: must be > 0 and < 1, found 1",
        ),
        (
            {"significance": {"metric": "accuracy", "test": "mcnemar", "alpha": 0}},
            r"gates\.significance\.alpha: must be > 0 and < 1, found 0",
        ),
        (
            {"significance": {"metric": "f1", "confidence": 1.5}},
            r"gates\.significance\.confidence: must be > 0 and < 1",
        ),
        (
            {"significance": {"metric": "f1", "test": "mcnemar"}},
            r"gates\.significance\.metric: mcnemar .* tests accuracy only, not f1; "
            r"use test: bootstrap",
        ),
        (
            {"significance": {"metric": "f1", "alpha": 0.01}},
            r"gates\.significance: unknown setting alpha; significance with test: bootstrap takes "
            r"metric, test, confidence, n_resamples",
        ),
        (
            {"significance": {"metric": "accuracy", "test": "mcnemar", "n_resamples": 10}},
            r"unknown setting n_resamples; "
            r"significance with test: mcnemar takes metric, test, alpha",
        ),
        (
            {"significance": {"metric": "f1", "test": "t-test"}},
            r"gates\.significance\.test: expected mcnemar or bootstrap, found 't-test'",
        ),
        (
            {"significance": {"metric": "f1", "n_resamples": 5}},
            r"gates\.significance\.n_resamples: must be at least 100",
        ),
        ({"slices": {"column": "", "metric": "f1"}}, r"gates\.slices\.column: expected a column"),
        (
            {"slices": {"column": "c", "metric": "f1", "max_drop": -0.1}},
            r"gates\.slices\.max_drop: must be >= 0",
        ),
        (
            {"slices": {"column": "c", "metric": "f1", "min_rows": 0}},
            r"gates\.slices\.min_rows: must be at least 1",
        ),
        ({"latency": {}}, r"gates\.latency\.p99_ms: give p99_ms, max_increase_ms or both"),
        ({"latency": {"p99_ms": 0}}, r"gates\.latency\.p99_ms: must be > 0"),
        ({"size": {}}, r"gates\.size\.max_mb: required"),
        ({"signature": {"outputs": "label"}}, r"gates\.signature\.outputs: expected a list"),
        (
            {"vs_champion": {"metric": "f1", "relative": "yes"}},
            r"gates\.vs_champion\.relative: expected true or false",
        ),
        ({"all_of": []}, r"gates\.all_of: an empty list of checks would decide"),
        ({"all_of": [{"any_of": []}]}, r"gates\.all_of\[0\]\.any_of: an empty list"),
        ({"any_of": {"size": {"max_mb": 1}}}, r"gates\.any_of: expected a list of checks"),
        (
            {"all_of": [{"sizes": {"max_mb": 1}}]},
            r"gates\.all_of\[0\]: unknown check 'sizes'; the checks are all_of, any_of, metric, "
            r"vs_champion, significance, slices, latency, size, signature",
        ),
        (
            {"size": {"max_mb": 1}, "latency": {"p99_ms": 1}},
            r"gates: expected exactly one check, found keys \['latency', 'size'\]",
        ),
        ([{"size": 50}], r"gates\[0\]\.size: expected a mapping of settings, found int 50"),
        ("accuracy > 0.8", r"gates: expected a check such as"),
    ],
)
def test_errors_name_the_path_and_what_is_allowed(data: object, message: str) -> None:
    with pytest.raises(LoopConfigError, match=message):
        parse_gate(data)


def test_task_is_checked_when_given() -> None:
    data = {"all_of": [{"size": {"max_mb": 1}}, {"metric": {"name": "rmse", "max": 1}}]}
    assert parse_gate(data, task="regression") is not None
    with pytest.raises(
        LoopConfigError,
        match=r"gates\.all_of\[1\]\.metric\.name: rmse is a regression metric but this loop's "
        r"task is classification; use one of accuracy, balanced_accuracy, f1",
    ):
        parse_gate(data, task="classification")


def test_checks_built_in_code_are_validated_too() -> None:
    with pytest.raises(LoopConfigError, match=r"metric\.min: min 2 is above max 1"):
        MetricCheck("accuracy", min=2, max=1)
    with pytest.raises(LoopConfigError, match="all_of needs a non-empty list"):
        AllOf(())
    with pytest.raises(LoopConfigError, match="alpha is for test: mcnemar"):
        SignificanceCheck("f1", alpha=0.01)


_numbers = st.floats(0.01, 0.99, allow_nan=False)
_leaf = st.one_of(
    st.builds(MetricCheck, st.sampled_from(["accuracy", "rmse"]), _numbers),
    st.builds(ChampionCheck, st.sampled_from(["f1", "mae"]), st.floats(-1, 1), st.booleans()),
    st.builds(SignificanceCheck, st.just("accuracy"), st.just("mcnemar"), _numbers),
    st.builds(
        SignificanceCheck,
        st.sampled_from(["r2", "roc_auc"]),
        st.just("bootstrap"),
        confidence=_numbers,
        n_resamples=st.integers(100, 5000),
    ),
    st.builds(
        SliceCheck, st.text(min_size=1, max_size=8), st.just("brier"), _numbers, st.integers(1, 99)
    ),
    st.builds(LatencyCheck, st.none() | _numbers, _numbers),
    st.builds(SizeCheck, _numbers),
    st.builds(SignatureCheck, st.none() | st.lists(st.text(min_size=1), max_size=3).map(tuple)),
)
_tree = st.recursive(
    _leaf,
    lambda kids: st.lists(kids, min_size=1, max_size=3).flatmap(
        lambda xs: st.sampled_from([AllOf(tuple(xs)), AnyOf(tuple(xs))])
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(_tree)
def test_any_gate_round_trips_through_yaml(root: Any) -> None:
    gate = Gate(root)
    assert parse_gate(yaml.safe_load(yaml.safe_dump(gate.to_json()))) == gate
