"""Traffic floors and caps: every arm keeps ``min_share``, none exceeds ``max_share``.

The policies are driven with rewards that make one arm look far better (or one
far worse), which without bounds sends nearly all traffic to it; with bounds the
observed shares must stay inside them, for every policy, over any long run.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgate.errors import ExperimentInputError
from mlgate.experiments.bandits import (
    UCB1,
    BasePolicy,
    EpsilonGreedy,
    LinearThompsonSampling,
    LinUCB,
    ThompsonSampling,
)

ARMS = ["good", "mid", "bad", "worse"]
RATES = {"good": 0.9, "mid": 0.3, "bad": 0.1, "worse": 0.05}


def make(kind: str, **shares: float) -> BasePolicy:
    if kind == "epsilon":
        return EpsilonGreedy(ARMS, 0.05, seed=1, **shares)
    if kind == "ucb":
        return UCB1(ARMS, 0.2, seed=1, **shares)
    if kind == "thompson":
        return ThompsonSampling(ARMS, seed=1, **shares)
    if kind == "gaussian":
        return ThompsonSampling(ARMS, "gaussian", seed=1, **shares)
    if kind == "linucb":
        return LinUCB(ARMS, ["x"], seed=1, **shares)
    return LinearThompsonSampling(ARMS, ["x"], seed=1, **shares)


def run(policy: BasePolicy, rounds: int, batch: int = 1) -> dict[str, int]:
    rng = np.random.default_rng(4)
    pulled = dict.fromkeys(ARMS, 0)
    arms: list[str] = []
    rewards: list[float] = []
    contexts: list[dict[str, float]] = []
    contextual = isinstance(policy, LinUCB | LinearThompsonSampling)
    for _ in range(rounds):
        context = {"x": float(rng.random())} if contextual else None
        arm = str(policy.pull(context))
        pulled[arm] += 1
        arms.append(arm)
        rewards.append(float(rng.random() < RATES[arm]))
        if context is not None:
            contexts.append(context)
        if len(arms) == batch:
            policy.update_many(arms, rewards, contexts if contextual else None)
            arms, rewards, contexts = [], [], []
    return pulled


KINDS = ["epsilon", "ucb", "thompson", "gaussian", "linucb", "linear-thompson"]


@pytest.mark.parametrize("kind", KINDS)
def test_without_bounds_the_best_arm_takes_nearly_everything(kind: str) -> None:
    pulled = run(make(kind), 3000)
    assert pulled["good"] / 3000 > 0.75
    assert min(pulled.values()) / 3000 < 0.05


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch", [1, 50])
def test_bounds_hold_for_every_policy(kind: str, batch: int) -> None:
    rounds = 3000
    policy = make(kind, min_share=0.1, max_share=0.5)
    pulled = run(policy, rounds, batch)
    for arm, n in pulled.items():
        assert 0.1 * rounds - 2 <= n <= 0.5 * rounds + 2, (arm, pulled)
    assert policy.pull_counts == pulled
    assert pulled["good"] >= 0.5 * rounds - 2  # the cap binds: good still gets its most


def test_reasons_say_floor_and_cap() -> None:
    policy = EpsilonGreedy(ARMS, 0.0, seed=0, min_share=0.1, max_share=0.5)
    for arm in ARMS:
        policy.update(arm, RATES[arm])
    decisions = [policy.decide() for _ in range(1000)]
    reasons = [reason for _, reason in decisions]
    assert {"floor", "cap", "exploit"} == set(reasons)
    assert 0.49 <= reasons.count("exploit") / 1000 <= 0.51  # good, up to its cap
    capped = [arm for arm, reason in decisions if reason == "cap"]
    assert capped.count("mid") >= 0.98 * len(capped)  # to the next best (bar the first pulls)
    assert 0.19 <= reasons.count("floor") / 1000 <= 0.21  # bad and worse, at their floor


def test_a_capped_pull_goes_to_the_next_best_arm() -> None:
    policy = EpsilonGreedy(ARMS, 0.0, seed=0, max_share=0.5)
    for arm in ARMS:
        policy.update(arm, RATES[arm])
    pulls = [policy.pull() for _ in range(1000)]
    assert pulls.count("good") == 500
    # The cap sends the rest to the second best, not at random (bar the first few pulls,
    # when every arm is over its cap).
    assert pulls.count("mid") >= 495


@settings(max_examples=25, deadline=None)
@given(
    arms=st.integers(2, 6),
    low=st.floats(0, 1),
    high=st.floats(0, 1),
    favourite=st.integers(0, 5),
    seed=st.integers(0, 2**32),
)
def test_bounds_hold_whatever_the_policy_prefers(
    arms: int, low: float, high: float, favourite: int, seed: int
) -> None:
    """Property: for any feasible bounds, shares after n pulls stay within them (± 2 pulls)."""
    min_share, max_share = low / arms, max(high, 1 / arms)
    names = list(range(arms))
    policy = EpsilonGreedy(names, 0.1, seed=seed, min_share=min_share, max_share=max_share)
    for arm in names:
        policy.update(arm, 1.0 if arm == favourite % arms else 0.0)
    rounds = 600
    pulls = [policy.pull() for _ in range(rounds)]
    for arm in names:
        n = pulls.count(arm)
        assert min_share * rounds - 2 <= n <= max_share * rounds + 2


@pytest.mark.parametrize(
    ("min_share", "max_share", "match"),
    [
        (0.3, 0.5, "adds up to 1.2 > 1"),
        (0.0, 0.2, "nowhere to go"),
        (0.3, 0.2, "above max_share"),
        (-0.1, 1.0, r"min_share must be a number in \[0, 1\]"),
        (0.0, float("nan"), "max_share must be"),
    ],
)
def test_infeasible_bounds_are_refused(min_share: float, max_share: float, match: str) -> None:
    with pytest.raises(ExperimentInputError, match=match):
        UCB1(ARMS, min_share=min_share, max_share=max_share)


def test_default_bounds_count_nothing() -> None:
    policy = UCB1(ARMS)
    assert policy.pull_counts is None
    assert (policy.min_share, policy.max_share) == (0.0, 1.0)
