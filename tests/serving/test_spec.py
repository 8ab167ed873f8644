"""Endpoint specs: the documented YAML validates, every mistake is a PolicyError that says where."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlgate.errors import PolicyError
from mlgate.serving.spec import (
    EndpointSpec,
    default_endpoint,
    endpoint_from_json,
    endpoint_to_json,
    parse_endpoint_yaml,
    targets_of,
)

FULL = """
name: fraud
model: fraud-model
timeout_ms: 200
allow_non_finite: false
batching: {max_batch_size: 64, max_wait_ms: 0, max_queue: 1024}
logging: {sample_rate: 1.0}
auth: {required: false}
route:
  split:
    sticky_key: user_id
    variants: [{target: champion, weight: 90}, {target: 3, weight: 10}]
shadow: [{target: challenger, fraction: 0.1}]
fallback: {targets: [champion], default: {outputs: {label: [0]}}}
circuit_breaker: {failure_threshold: 5, reset_timeout_s: 10}
"""

ROUTES = {
    "split": "{split: {variants: [{target: 1, weight: 33.3}, {target: 2, weight: 66.7}]}}",
    "rules": """
  rules:
    - {when: 'country in ["DE", "FR"] and tier == "gold"', target: 4}
    - {when: 'tier == "free"', target: latest}
    - {default: champion}""",
    "ensemble": "{ensemble: {targets: [1, 2, 3], combine: weighted_mean, weights: [1, 2, 1]}}",
    "cascade": """
  cascade:
    stages: [{target: 1, min_confidence: 0.9}, {target: 2, min_confidence: 1}, {target: 3}]""",
    "bandit": "{bandit: {algorithm: epsilon_greedy, epsilon: 0.1, arms: [1, 2], seed: 7}}",
    "target": "{target: champion}",
}


def spec(route: str, extra: str = "") -> EndpointSpec:
    return parse_endpoint_yaml(f"name: fraud\nroute: {route}\n{extra}")


def refused(text: str) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_endpoint_yaml(text)
    return str(caught.value)


def test_the_documented_spec_validates() -> None:
    parsed = parse_endpoint_yaml(FULL)
    assert parsed.model == "fraud-model"
    assert parsed.timeout_ms == 200
    assert parsed.route.kind == "split"
    assert parsed.route.split is not None and parsed.route.split.sticky_key == "user_id"
    assert parsed.shadow[0].fraction == 0.1
    assert parsed.fallback.default is not None
    assert parsed.fallback.default.outputs == {"label": [0]}
    assert targets_of(parsed) == {"champion", 3, "challenger"}


@pytest.mark.parametrize("kind", sorted(ROUTES))
def test_every_route_kind_validates_and_round_trips(kind: str) -> None:
    parsed = spec(ROUTES[kind])
    assert parsed.route.kind == kind
    stored = json.loads(json.dumps(endpoint_to_json(parsed)))
    assert endpoint_from_json(stored) == parsed
    assert list(stored["route"]) == [kind]  # unset kinds are not stored


def test_rules_are_compiled_at_parse_time() -> None:
    rules = spec(ROUTES["rules"]).route.rules
    assert rules is not None
    first = rules[0].rule
    assert first is not None and first.matches({"country": "DE", "tier": "gold"})
    assert rules[-1].rule is None and rules[-1].default == "champion"
    assert targets_of(spec(ROUTES["rules"])) == {4, "latest", "champion"}


def test_zero_config_default() -> None:
    default = default_endpoint("fraud")
    assert default.name == default.model == "fraud"
    assert default.route.kind == "target" and default.route.target == "champion"
    assert targets_of(default) == {"champion"}
    assert parse_endpoint_yaml("name: fraud") == default
    with pytest.raises(PolicyError, match="model name 'no good' is not allowed"):
        default_endpoint("no good")


def test_shorthands() -> None:
    assert spec("champion").route.target == "champion"
    assert spec("3").route.target == 3
    assert spec("{target: '7'}").route.target == 7  # digit strings are versions


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (
            "{split: {variants: [{target: champion, weight: 90}, {target: 3, weight: 5}]}}",
            "route.split.variants: weights must sum to 100, found 95",
        ),
        (
            "{split: {variants: [{target: 1, weight: 110}, {target: 2, weight: -10}]}}",
            "route.split.variants[1].weight: input should be greater than or equal to 0",
        ),
        (
            "{split: {variants: [{target: 1, weight: 50}, {target: 1, weight: 50}]}}",
            "target 1 is listed twice",
        ),
        ("{split: {variants: []}}", "route.split.variants: needs at least 1 entries, found 0"),
        (
            "{rules: [{when: 'country in [DE', target: 4}, {default: champion}]}",
            "route.rules[0]: rule 'country in [DE': expected a value at column 13",
        ),
        ("{rules: [{when: 'a == 1', target: 4}]}", "exactly one '{default: <target>}'"),
        ("{rules: [{default: 1}, {when: 'a == 1', target: 4}]}", "as the last one"),
        ("{rules: [{when: 'a == 1'}, {default: 1}]}", "route.rules[0]: each rule needs"),
        ("{rules: [{default: 1, target: 2}]}", "a default entry has only"),
        ("{target: 1, bandit: {arms: [1, 2]}}", "choose exactly one of"),
        ("{}", "found none"),
        ("{ensemble: {targets: [1, 2], weights: [1, 2]}}", "only with 'combine: weighted_mean'"),
        ("{ensemble: {targets: [1, 2], combine: weighted_mean}}", "needs weights"),
        (
            "{ensemble: {targets: [1, 2], combine: weighted_mean, weights: [1]}}",
            "2 targets, found 1 weights",
        ),
        ("{ensemble: {targets: [1, 2], combine: weighted_mean, weights: [0, 0]}}", "above 0"),
        ("{ensemble: {targets: [1, 2], combine: median}}", "route.ensemble.combine"),
        ("{ensemble: {targets: [1]}}", "route.ensemble.targets: needs at least 2"),
        ("{cascade: {stages: [{target: 1}]}}", "route.cascade.stages: needs at least 2"),
        ("{cascade: {stages: [{target: 1}, {target: 2}]}}", "stage 0 needs min_confidence"),
        (
            "{cascade: {stages: [{target: 1, min_confidence: 0}, {target: 2}]}}",
            "stages[0].min_confidence: input should be greater than 0",
        ),
        (
            "{cascade: {stages: [{target: 1, min_confidence: 0.5}, {target: 2, "
            "min_confidence: 0.9}]}}",
            "the last stage always answers",
        ),
        ("{bandit: {arms: [1]}}", "route.bandit.arms: needs at least 2"),
        ("{bandit: {arms: [1, 2], epsilon: 1.5}}", "route.bandit.epsilon"),
        ("{bandit: {arms: [1, 2], algorithm: ucb}}", "route.bandit.algorithm"),
        ("{target: 0}", "a target is a version number"),
        ("{target: true}", "found True"),
        ("{target: Champion}", "alias 'Champion' is not allowed"),
        ("{target: champion, weight: 3}", "route.weight: unknown field"),
    ],
)
def test_route_mistakes_say_where_and_what(route: str, message: str) -> None:
    assert message in refused(f"name: fraud\nroute: {route}")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("shadow: [{target: 2, fraction: 1.5}]", "shadow[0].fraction"),
        ("shadow: [{target: 2}, {target: 2}]", "shadow: target 2 is listed twice"),
        ("logging: {sample_rate: -0.1}", "logging.sample_rate"),
        ("timeout_ms: 0", "timeout_ms: input should be greater than 0, found 0"),
        ("batching: {max_batch_size: 0}", "batching.max_batch_size"),
        ("fallback: {targets: [1, 1]}", "fallback.targets: target 1 is listed twice"),
        ("fallback: {default: {outputs: {}}}", "fallback.default.outputs"),
        ("circuit_breaker: {reset_timeout_s: 0}", "circuit_breaker.reset_timeout_s"),
        ("routing: {}", "routing: unknown field; remove it or fix its spelling"),
    ],
)
def test_other_mistakes_say_where(extra: str, message: str) -> None:
    assert message in refused(f"name: fraud\n{extra}")


def test_the_same_problem_at_two_paths_is_said_once() -> None:
    message = refused("name: 'no good'")
    assert message.count("is not allowed") == 1
    assert "name, model: model name 'no good'" in message


def test_yaml_problems_are_policy_errors() -> None:
    assert "line 1, column 9" in refused("name: [x")
    assert "must be a mapping" in refused("- name: x")
    assert "must be a mapping" in refused("")
    assert "repeats the key 'route' at line 3" in refused("name: x\nroute: 1\nroute: 2")
    assert "name: required; add it" in refused("model: x")
    assert "constructor for the tag 'tag:yaml.org,2002:python/object" in refused(
        "name: !!python/object/apply:os.system ['true']"
    )


def test_json_with_problems_is_refused_too() -> None:
    with pytest.raises(PolicyError, match="route.target"):
        endpoint_from_json({"name": "fraud", "route": {"target": -1}})


# --- round trips of generated specs --------------------------------------------------------

targets = st.one_of(st.integers(1, 50), st.sampled_from(["champion", "challenger", "latest"]))


def _split(weights: list[int]) -> dict[str, Any]:
    variants = [{"target": i + 1, "weight": w} for i, w in enumerate(weights)]
    return {"split": {"variants": variants, "sticky_key": "user_id"}}


splits = st.lists(st.integers(0, 100), min_size=1, max_size=5).filter(lambda w: sum(w) > 0)
routes = st.one_of(
    targets.map(lambda t: {"target": t}),
    splits.map(
        lambda w: _split([*w[:-1], 100 - sum(w[:-1])]) if sum(w[:-1]) <= 100 else _split([100])
    ),
    st.lists(targets, min_size=2, max_size=4, unique=True).map(
        lambda ts: {"ensemble": {"targets": ts}}
    ),
    st.tuples(st.lists(targets, min_size=2, max_size=4, unique=True), st.floats(0.01, 1)).map(
        lambda p: {
            "cascade": {
                "stages": [{"target": t, "min_confidence": p[1]} for t in p[0][:-1]]
                + [{"target": p[0][-1]}]
            }
        }
    ),
    st.tuples(st.lists(targets, min_size=2, max_size=4, unique=True), st.floats(0, 1)).map(
        lambda p: {"bandit": {"arms": p[0], "epsilon": p[1]}}
    ),
)
specs = st.fixed_dictionaries(
    {"name": st.from_regex(r"[a-z][a-z0-9._-]{0,10}", fullmatch=True), "route": routes},
    optional={
        "timeout_ms": st.floats(0.5, 1e4),
        "shadow": st.lists(targets, max_size=3, unique=True).map(
            lambda ts: [{"target": t, "fraction": 0.5} for t in ts]
        ),
        "fallback": st.lists(targets, max_size=3, unique=True).map(lambda ts: {"targets": ts}),
        "logging": st.floats(0, 1).map(lambda r: {"sample_rate": r}),
    },
)


@given(specs)
def test_generated_specs_round_trip_through_json(data: dict[str, Any]) -> None:
    if "bandit" in data["route"]:
        data.pop("logging", None)  # a bandit needs every request logged (tested below)
    parsed = endpoint_from_json(data)
    stored = json.loads(json.dumps(endpoint_to_json(parsed)))
    assert endpoint_from_json(stored) == parsed
    assert endpoint_to_json(endpoint_from_json(stored)) == stored


def test_a_bandit_needs_every_request_logged() -> None:
    with pytest.raises(PolicyError, match=r"sample_rate 1\.0"):
        endpoint_from_json(
            {
                "name": "b",
                "route": {"bandit": {"arms": [1, 2]}},
                "logging": {"sample_rate": 0.5},
            }
        )
