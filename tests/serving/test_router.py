"""Routing: weighted splits match their weights, sticky users only move to a growing canary."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mlgate.errors import ExperimentInputError, InvalidRequestError
from mlgate.experiments.bandits import UCB1, EpsilonGreedy, LinUCB, ThompsonSampling
from mlgate.serving.router import RoutePlan, Router, Target, routed_target
from mlgate.serving.spec import EndpointSpec, endpoint_from_json


def endpoint(route: Any, **extra: Any) -> EndpointSpec:
    return endpoint_from_json({"name": "fraud", "route": route, **extra})


def split(weights: Mapping[Target, float], sticky: bool = True) -> EndpointSpec:
    variants = [{"target": t, "weight": w} for t, w in weights.items()]
    key = {"sticky_key": "user_id"} if sticky else {}
    return endpoint({"split": {"variants": variants, **key}})


def router(spec: EndpointSpec, seed: int = 0) -> Router:
    return Router(spec, rng=random.Random(seed))


def assert_matches_weights(counts: Counter[Target], weights: Mapping[Target, float]) -> None:
    total = sum(counts.values())
    assert set(counts) <= {t for t, w in weights.items() if w > 0}
    live = [t for t, w in weights.items() if w > 0]
    expected = [total * weights[t] / 100 for t in live]
    assert stats.chisquare([counts[t] for t in live], expected).pvalue > 1e-3


# --- splits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weights", [{"champion": 90, 3: 10}, {1: 50, 2: 30, 3: 20}, {1: 99.5, 2: 0, 3: 0.5}]
)
def test_random_split_frequencies_match_weights(weights: dict[Target, float]) -> None:
    r = router(split(weights, sticky=False))
    plans = [r.route({}, None) for _ in range(20_000)]
    assert_matches_weights(Counter(p.targets[0] for p in plans), weights)
    assert {p.mode for p in plans} == {"single"}
    assert plans[0].reason == f"split:weighted→{plans[0].targets[0]}"


@pytest.mark.parametrize(
    "weights", [{"champion": 90, 3: 10}, {1: 50, 2: 30, 3: 20}, {1: 60, 2: 0, 3: 40}]
)
def test_sticky_split_frequencies_match_weights(weights: dict[Target, float]) -> None:
    r = router(split(weights))
    counts = Counter(r.route({}, f"user-{i}").targets[0] for i in range(20_000))
    assert_matches_weights(counts, weights)


def test_sticky_assignment_is_stable_and_independent_of_the_rng() -> None:
    spec = split({"champion": 90, 3: 10})
    first, second = router(spec, seed=1), router(spec, seed=2)
    for i in range(200):
        assert first.route({}, f"u{i}") == second.route({}, f"u{i}")
    plan = first.route({}, "u7")
    assert plan.reason == f"split:sticky user_id bucket→{plan.targets[0]}"


def test_sticky_split_without_a_key_value_falls_back_to_random() -> None:
    r = router(split({1: 50, 2: 50}))
    plan = r.route({}, None)
    assert plan.reason == f"split:weighted (no user_id)→{plan.targets[0]}"


def test_sticky_value_is_read_from_attributes() -> None:
    r = router(split({1: 50, 2: 50}))
    assert r.sticky_key == "user_id"
    assert r.sticky_value({"user_id": "abc"}) == "abc"
    assert r.sticky_value({"user_id": 42}) == "42"
    assert r.sticky_value({}) is None
    with pytest.raises(InvalidRequestError, match="'user_id' must be a string or an integer"):
        r.sticky_value({"user_id": [1]})
    assert router(split({1: 50, 2: 50}, sticky=False)).sticky_value({"user_id": "a"}) is None


def sticky_targets(weights: Sequence[float], users: int = 300) -> list[Target]:
    r = router(split({i + 1: w for i, w in enumerate(weights)}))
    return [r.route({}, f"user-{user}").targets[0] for user in range(users)]


@st.composite
def weight_moves(draw: st.DrawFn) -> tuple[list[int], list[int], int]:
    """Integer weights summing to 100, then the same with one variant grown, the rest not."""
    n = draw(st.integers(2, 5))
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=n - 1, max_size=n - 1)))
    before = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    grow = draw(st.integers(0, n - 1))
    after = list(before)
    for i in range(n):
        if i != grow:
            taken = draw(st.integers(0, after[i]))
            after[i] -= taken
            after[grow] += taken
    return before, after, grow


@settings(max_examples=150, deadline=None)
@given(weight_moves())
def test_nobody_leaves_a_growing_variant(move: tuple[list[int], list[int], int]) -> None:
    before, after, grow = move
    for was, now in zip(sticky_targets(before), sticky_targets(after), strict=True):
        if was == grow + 1:
            assert now == was


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(1, 100), min_size=2, max_size=5),
    st.data(),
)
def test_a_canary_ramp_only_moves_users_to_the_canary(raw: list[int], data: st.DataObject) -> None:
    """Grow one variant, shrink the others in proportion (as a ramp from 90/10 to 80/20 does).

    Shrinking the others unevenly can move users between them too: weighted
    rendezvous only promises that nobody leaves the growing variant.
    """
    before = [100 * w / sum(raw) for w in raw]
    grow = data.draw(st.integers(0, len(raw) - 1))
    share = data.draw(st.floats(before[grow], 100))
    scale = (100 - share) / (100 - before[grow])
    after = [0.0 if i == grow else w * scale for i, w in enumerate(before)]
    after[grow] = 100 - sum(after)  # the canary absorbs rounding, the rest keep their ratios
    for was, now in zip(sticky_targets(before), sticky_targets(after), strict=True):
        assert now in (was, grow + 1)


def test_uneven_shrinking_can_move_users_between_the_others() -> None:
    """The counterexample Hypothesis found, kept so the documented limit stays true."""
    moved = [
        (was, now)
        for was, now in zip(
            sticky_targets([0, 1, 99], 2000), sticky_targets([4, 1, 95], 2000), strict=True
        )
        if was != now
    ]
    assert (3, 2) in moved


def test_sticky_hash_depends_on_the_endpoint_name() -> None:
    a = router(split({1: 50, 2: 50}))
    b = Router(
        endpoint_from_json({"name": "other", "route": split({1: 50, 2: 50}).route.model_dump()}),
        rng=random.Random(0),
    )
    users = [f"u{i}" for i in range(64)]
    assert [a.route({}, u) for u in users] != [b.route({}, u) for u in users]


# --- rules, single, ensemble, cascade -------------------------------------------------------

RULES = {
    "rules": [
        {"when": 'country in ["DE", "FR"] and tier == "gold"', "target": 4},
        {"when": 'tier == "gold"', "target": 5},
        {"default": "champion"},
    ]
}


@pytest.mark.parametrize(
    ("attrs", "target", "reason"),
    [
        ({"country": "DE", "tier": "gold"}, 4, "rule#0"),
        ({"country": "US", "tier": "gold"}, 5, "rule#1"),
        ({"country": "DE"}, "champion", "default"),
        ({"tier": 1}, "champion", "default"),
    ],
)
def test_first_matching_rule_wins(attrs: dict[str, Any], target: Target, reason: str) -> None:
    plan = router(endpoint(RULES)).route(attrs, None)
    assert plan == RoutePlan("single", (target,), (), (), reason)


def test_fixed_plans() -> None:
    fallback = {"fallback": {"targets": ["champion", 2]}}
    assert router(endpoint({"target": 3}, **fallback)).route({}, None) == RoutePlan(
        "single", (3,), (), ("champion", 2), "target"
    )
    ensemble = router(endpoint({"ensemble": {"targets": [1, 2, 3]}})).route({}, None)
    assert (ensemble.mode, ensemble.targets) == ("ensemble", (1, 2, 3))
    cascade = {"stages": [{"target": 2, "min_confidence": 0.9}, {"target": 1}]}
    plan = router(endpoint({"cascade": cascade})).route({}, None)
    assert (plan.mode, plan.targets) == ("cascade", (2, 1))


def test_shadows_are_drawn_independently_with_their_fractions() -> None:
    shadow = [{"target": 7, "fraction": 1.0}, {"target": 8, "fraction": 0.3}, {"target": 9}]
    shadow.append({"target": 10, "fraction": 0.0})
    r = router(endpoint({"target": 1}, shadow=shadow))
    plans = [r.route({}, None) for _ in range(10_000)]
    counts = Counter(t for p in plans for t in p.shadows)
    assert counts[7] == counts[9] == 10_000 and counts[10] == 0
    assert stats.binomtest(counts[8], 10_000, 0.3).pvalue > 1e-3
    assert all(p.targets == (1,) and p.shadows[0] == 7 for p in plans)


# --- bandits -------------------------------------------------------------------------------


def test_router_bandit_is_seeded_from_the_spec() -> None:
    spec = endpoint({"bandit": {"arms": [1, 2], "epsilon": 0.2, "seed": 7}})
    a, b = router(spec, seed=1), router(spec, seed=2)
    assert [a.route({}, None) for _ in range(50)] == [b.route({}, None) for _ in range(50)]
    assert isinstance(a.bandit, EpsilonGreedy)
    a.bandit.update_many([1] * 5 + [2] * 5, np.array([0.2] * 5 + [0.8] * 5))
    plans = [a.route({}, None) for _ in range(2_000)]
    assert {p.reason.split("→")[0] for p in plans} == {"bandit:explore", "bandit:exploit"}
    assert {p.targets for p in plans if p.reason.startswith("bandit:exploit")} == {(2,)}
    assert all(routed_target(p.reason) == str(p.targets[0]) for p in plans)


@pytest.mark.parametrize(
    ("algorithm", "cls"),
    [("ucb1", UCB1), ("thompson", ThompsonSampling), ("epsilon_greedy", EpsilonGreedy)],
)
def test_the_spec_picks_the_algorithm(algorithm: str, cls: type) -> None:
    r = router(endpoint({"bandit": {"arms": [1, 2], "algorithm": algorithm}}))
    assert isinstance(r.bandit, cls)
    assert {r.route({}, None).targets for _ in range(20)} == {(1,), (2,)}  # both tried first


def test_a_contextual_plan_carries_its_encoded_context() -> None:
    spec = endpoint(
        {
            "bandit": {
                "algorithm": "linucb",
                "arms": [1, 2],
                "features": ["age", {"name": "tier", "categories": ["gold", "silver"]}],
                "seed": 3,
            }
        }
    )
    r = router(spec)
    assert isinstance(r.bandit, LinUCB)
    plan = r.route({"age": 30, "tier": "silver"}, None)
    assert plan.reason.startswith("bandit:") and plan.targets in {(1,), (2,)}
    assert plan.context is not None and 30.0 in plan.context
    assert sorted(plan.context).count(1.0) >= 1  # the silver one-hot (and the intercept)
    with pytest.raises(ExperimentInputError, match="tier"):
        r.route({"age": 30}, None)


def test_an_injected_bandit_policy_is_used() -> None:
    policy = UCB1([1, 2], seed=0)
    spec = endpoint({"bandit": {"arms": [1, 2]}})
    r = Router(spec, rng=random.Random(0), bandit=policy)
    assert r.bandit is policy
    policy.update_many([1, 2, 2], np.array([0.0, 1.0, 1.0]))
    assert r.route({"x": 1}, None).targets == (2,)


@pytest.mark.parametrize(
    ("route", "target"),
    [
        ("split:weighted→2", "2"),
        ("split:sticky user_id bucket→champion:fallback", "champion"),
        ("bandit:exploit→1:default", "1"),
        ("bandit:ucb→3", "3"),
        ("pinned:2", None),
        ("rule#0", None),
        ("target", None),
        ("split:broken", None),
    ],
)
def test_routed_target_reads_the_choice_back(route: str, target: str | None) -> None:
    assert routed_target(route) == target
