"""One contract for every bandit policy: arms, rewards, reproducibility, batching, state.

Each policy is run through the same checks (river's habit: one suite over all
estimators), with real numbers: the batch path against sequential updates, the
state round trip through JSON, and the errors a user would hit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgate.errors import ExperimentInputError
from mlgate.experiments.bandits import (
    REASONS,
    UCB1,
    BasePolicy,
    ContextEncoder,
    EpsilonGreedy,
    LinearThompsonSampling,
    LinUCB,
    Policy,
    ThompsonSampling,
)

ARMS = ["a", "b", 3]
ENCODER = ContextEncoder(numeric=["age"], categorical={"segment": ["x", "y"]})
Factory = Callable[..., BasePolicy]

POLICIES: dict[str, Factory] = {
    "epsilon-greedy": lambda arms=ARMS, **kw: EpsilonGreedy(arms, 0.2, **kw),
    "ucb1": lambda arms=ARMS, **kw: UCB1(arms, **kw),
    "thompson-bernoulli": lambda arms=ARMS, **kw: ThompsonSampling(arms, **kw),
    "thompson-gaussian": lambda arms=ARMS, **kw: ThompsonSampling(arms, "gaussian", **kw),
    "linucb": lambda arms=ARMS, **kw: LinUCB(arms, ENCODER, **kw),
    "linear-thompson": lambda arms=ARMS, **kw: LinearThompsonSampling(arms, ENCODER, **kw),
}
CONTEXTUAL = {"linucb", "linear-thompson"}


def context_for(name: str, i: int) -> dict[str, Any] | None:
    if name not in CONTEXTUAL:
        return None
    return {"age": (i % 7) / 7.0, "segment": "xy"[i % 2]}


def reward_for(arm: Any, i: int) -> float:
    return float((hash((str(arm), i)) % 10) < {"a": 2, "b": 5, 3: 8}[arm])


@pytest.fixture(params=sorted(POLICIES))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def drive(policy: BasePolicy, name: str, rounds: int) -> list[tuple[Any, str]]:
    out = []
    for i in range(rounds):
        context = context_for(name, i)
        arm, reason = policy.decide(context)
        policy.update(arm, reward_for(arm, i), context)
        out.append((arm, reason))
    return out


def test_every_policy_is_a_policy(name: str) -> None:
    assert isinstance(POLICIES[name](seed=1), Policy)


def test_same_seed_gives_the_same_pulls(name: str) -> None:
    first = drive(POLICIES[name](seed=7), name, 300)
    second = drive(POLICIES[name](seed=7), name, 300)
    other = drive(POLICIES[name](seed=8), name, 300)
    assert first == second
    assert first != other
    assert {reason for _, reason in first} <= set(REASONS)


def test_pull_returns_one_of_the_arms(name: str) -> None:
    policy = POLICIES[name](seed=3)
    pulled = {policy.pull(context_for(name, i)) for i in range(200)}
    assert pulled <= set(ARMS)
    assert len(pulled) >= 2  # nothing learned yet: the policies explore


def test_learns_the_best_arm(name: str) -> None:
    rng = np.random.default_rng(0)
    rates = {"a": 0.2, "b": 0.5, 3: 0.8}
    policy = POLICIES[name](seed=2)
    late = []
    for i in range(3000):
        context = context_for(name, i)
        arm = policy.pull(context)
        policy.update(arm, float(rng.random() < rates[arm]), context)
        if i >= 2000:
            late.append(arm)
    assert late.count(3) / len(late) > 0.7


@pytest.mark.parametrize(
    "arms",
    [["a"], ["a", "a"], [], "ab", [1.5, 2], [True, False], [None, "a"]],
)
def test_bad_arms_are_refused(name: str, arms: Any) -> None:
    with pytest.raises(ExperimentInputError, match="arm"):
        POLICIES[name](arms=arms)


def test_unknown_arm_and_bad_rewards_are_refused(name: str) -> None:
    policy = POLICIES[name](seed=0)
    context = context_for(name, 0)
    before = policy.state()
    with pytest.raises(ExperimentInputError, match=r"'zz' is not one of .*\['a', 'b', 3\]"):
        policy.update("zz", 1.0, context)
    for bad in (math.nan, math.inf, "1", None):
        with pytest.raises(ExperimentInputError, match="reward"):
            policy.update("a", bad, context)  # type: ignore[arg-type]
    contexts = None if context is None else [context, context]
    with pytest.raises(ExperimentInputError, match="finite"):
        policy.update_many(["a", "b"], [1.0, math.nan], contexts)
    with pytest.raises(ExperimentInputError, match="not one of"):
        policy.update_many(["a", "q"], [1.0, 0.0], contexts)
    with pytest.raises(ExperimentInputError, match="2 rewards|one per arm"):
        policy.update_many(["a", "b"], [1.0], contexts)
    assert policy.state() == before  # nothing of a refused batch was used


def test_bernoulli_thompson_refuses_rewards_outside_the_unit_interval() -> None:
    policy = ThompsonSampling(ARMS, seed=0)
    with pytest.raises(ExperimentInputError, match=r"outside \[0, 1\].*gaussian"):
        policy.update("a", 1.5)
    with pytest.raises(ExperimentInputError, match="outside"):
        policy.update_many(["a", "b"], [0.5, -0.1])
    ThompsonSampling(ARMS, "gaussian", seed=0).update("a", 1.5)  # fine for a Gaussian


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: EpsilonGreedy(ARMS, 1.5), "epsilon"),
        (lambda: UCB1(ARMS, alpha=-1), "alpha"),
        (lambda: ThompsonSampling(ARMS, "poisson"), "likelihood"),  # type: ignore[arg-type]
        (lambda: ThompsonSampling(ARMS, prior_alpha=0), "prior_alpha"),
        (lambda: LinUCB(ARMS, ["age"], ridge=0), "ridge"),
        (lambda: LinUCB(ARMS, "age"), "features"),
        (lambda: EpsilonGreedy(ARMS, seed=1.5), "seed"),  # type: ignore[arg-type]
    ],
)
def test_bad_parameters_are_refused(factory: Callable[[], Any], match: str) -> None:
    with pytest.raises(ExperimentInputError, match=match):
        factory()


def events(name: str) -> st.SearchStrategy[list[tuple[Any, float, dict[str, Any] | None]]]:
    reward = (
        st.floats(0, 1)
        if name == "thompson-bernoulli"
        else st.floats(-100, 100, allow_nan=False, allow_infinity=False)
    )
    context = (
        st.builds(
            lambda age, seg: {"age": age, "segment": seg},
            st.floats(-5, 5),
            st.sampled_from(["x", "y"]),
        )
        if name in CONTEXTUAL
        else st.none()
    )
    return st.lists(st.tuples(st.sampled_from(ARMS), reward, context), max_size=40)


def assert_states_close(left: dict[str, Any], right: dict[str, Any]) -> None:
    assert left.keys() == right.keys()
    for key in left:
        if key in ("policy", "arms", "features", "counts"):
            assert left[key] == right[key]
        else:
            np.testing.assert_allclose(left[key], right[key], rtol=1e-9, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_update_many_equals_sequential_updates(name: str, data: st.DataObject) -> None:
    """Property: a batch and the same rewards one by one leave the same statistics."""
    first = data.draw(events(name))
    second = data.draw(events(name))
    sequential, batched = POLICIES[name](seed=1), POLICIES[name](seed=1)
    for batch in (first, second):
        for arm, reward, context in batch:
            sequential.update(arm, reward, context)
        contexts = [c for _, _, c in batch] if name in CONTEXTUAL else None
        batched.update_many([a for a, _, _ in batch], [r for _, r, _ in batch], contexts)
    assert_states_close(sequential.state(), batched.state())
    if name not in CONTEXTUAL:  # numpy.add.at adds in order: bit for bit
        assert sequential.state() == batched.state()


@settings(max_examples=20, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_state_round_trips_through_json(name: str, data: st.DataObject) -> None:
    """Property: state() -> JSON -> load_state into a twin gives the same state and pulls."""
    policy = POLICIES[name](seed=5)
    batch = data.draw(events(name))
    for arm, reward, context in batch:
        policy.update(arm, reward, context)
    saved = json.loads(json.dumps(policy.state()))
    twin = POLICIES[name](seed=5)
    twin.load_state(saved)
    assert_states_close(twin.state(), policy.state())
    fresh = POLICIES[name](seed=9)
    fresh.load_state(saved)
    again = POLICIES[name](seed=9)
    again.load_state(json.loads(json.dumps(twin.state())))
    pulls = [fresh.pull(context_for(name, i)) for i in range(20)]
    assert pulls == [again.pull(context_for(name, i)) for i in range(20)]


def test_load_state_accepts_reordered_arms_and_replaces_references(name: str) -> None:
    learner = POLICIES[name](seed=1)
    drive(learner, name, 200)
    state = learner.state()
    order = [2, 0, 1]
    shuffled = dict(state)
    for key, value in state.items():
        if isinstance(value, list) and key not in ("features",):
            shuffled[key] = [value[i] for i in order]
    server = POLICIES[name](seed=1)
    drive(server, name, 20)
    held = server.state()
    attribute = "_model" if name in CONTEXTUAL else "_stats"
    before = getattr(server, attribute)  # what a concurrent pull may still be reading
    server.load_state(shuffled)
    assert_states_close(server.state(), state)
    assert getattr(server, attribute) is not before  # one reference swapped ...
    setattr(server, attribute, before)
    assert server.state() == held  # ... and the old statistics were not written into


def test_load_state_refuses_invalid_states(name: str) -> None:
    policy = POLICIES[name](seed=1)
    drive(policy, name, 50)
    good = policy.state()
    before = policy.state()
    broken: list[Any] = [
        [1, 2],
        {**good, "arms": ["a", "b"]},
        {**good, "counts": [-1, 0, 0]},
        {**good, "counts": "lots"},
        {**good, "sums": [math.nan, 0.0, 0.0]},
        {**good, "sums_squares": [1.0, 2.0]},
    ]
    if name in CONTEXTUAL:
        broken.append({**good, "features": ["intercept"]})
        broken.append({**good, "A": [[[0.0] * 4] * 4] * 3})
        broken.append({**good, "b": [[0.0] * 3] * 3})
    for state in broken:
        with pytest.raises(ExperimentInputError):
            policy.load_state(state)
    assert policy.state() == before


def test_impossible_counting_states_are_refused() -> None:
    policy = UCB1(ARMS)
    state = policy.state()
    with pytest.raises(ExperimentInputError, match="impossible"):
        policy.load_state({**state, "counts": [0, 1, 1], "sums": [2.0, 0.0, 0.0]})
    with pytest.raises(ExperimentInputError, match="too large"):
        policy.load_state(
            {**state, "counts": [2, 0, 0], "sums": [4.0, 0, 0], "sums_squares": [1.0, 0, 0]}
        )
    with pytest.raises(ExperimentInputError, match="Bernoulli"):
        ThompsonSampling(ARMS).load_state(
            {**state, "counts": [1, 0, 0], "sums": [3.0, 0, 0], "sums_squares": [9.0, 0, 0]}
        )


def test_counting_states_move_between_counting_policies() -> None:
    learner = EpsilonGreedy(ARMS, seed=0)
    drive(learner, "epsilon-greedy", 100)
    ucb = UCB1(ARMS, seed=0)
    ucb.load_state(learner.state())
    assert ucb.counts() == learner.counts()
    assert ucb.means() == pytest.approx(learner.means())


def test_fast_paths_agree_with_the_general_path(name: str) -> None:
    """Without share bounds pull/decide take a shortcut; it must choose as decide's general path."""
    fast, general = POLICIES[name](seed=4), POLICIES[name](seed=4)
    for i in range(300):
        context = context_for(name, i)
        arm, reason = fast.decide(context) if i % 2 else (fast.pull(context), None)
        expected, why = BasePolicy.decide(general, context)  # the class's path
        assert arm == expected
        assert reason in (None, why)
        reward = reward_for(arm, i)
        fast.update(arm, reward, context)
        general.update(arm, reward, context)


@pytest.mark.parametrize("name", ["thompson-bernoulli", "thompson-gaussian", "epsilon-greedy"])
def test_pulls_follow_the_statistics_at_once(name: str) -> None:
    """Precomputed picks are dropped when statistics change: the next pull uses the new ones."""
    policy = POLICIES[name](seed=0)
    for _ in range(5):
        policy.pull()  # picks drawn from the prior
    state = policy.state()
    state.update(counts=[10_000, 10_000, 10_000], sums=[0.0, 0.0, 10_000.0])
    state.update(sums_squares=[0.0, 0.0, 10_000.0])
    policy.load_state(state)
    pulls = [policy.pull() for _ in range(50)]
    assert pulls.count(3) >= (40 if name == "epsilon-greedy" else 50)
