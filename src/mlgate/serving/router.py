"""Traffic routing: which version(s) answer a request, which are mirrored, which stand by.

:class:`Router` compiles an :class:`~mlgate.serving.spec.EndpointSpec` once,
at deploy time, into precomputed plans and closures, so that :meth:`Router.route`
on the hot path only draws a random number, hashes a key or matches a rule, and
returns a plan it built in advance. Randomness comes from the injected
:class:`random.Random`, hashing is explicit BLAKE2b, so routing is reproducible.

Sticky splits use weighted rendezvous hashing (Schindelhauer and Schomaker,
"Weighted Distributed Hash Tables", SPAA 2005; Resch, "New Hashing Algorithms
for Data Storage", 2015): each variant ``v`` scores ``-ln(u(key, v)) / w(v)``
for a uniform ``u`` derived from the key and the variant, and the lowest score
wins. A key lands on ``v`` with probability ``w(v) / sum(w)``, and a key's
scores for the other variants do not depend on ``v``'s weight, so raising one
canary's weight (and lowering the rest) only moves users *to* the canary: no
user who already saw it is switched back mid-experiment.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mlgate.errors import InvalidRequestError
from mlgate.experiments.bandits import (
    REASONS,
    UCB1,
    ContextEncoder,
    EpsilonGreedy,
    LinearThompsonSampling,
    LinUCB,
    Policy,
    ThompsonSampling,
)
from mlgate.serving.spec import BanditRoute, EndpointSpec

__all__ = ["ARROW", "RoutePlan", "Router", "Target", "build_bandit", "routed_target"]

Target = int | str
Mode = Literal["single", "ensemble", "cascade"]
_UNIFORM_BITS = 53  # exactly representable in a float, so u lies strictly inside (0, 1)
# A split's or a bandit's route reason ends with ARROW and the target it chose (then
# ":fallback" or ":default" if another answered): experiments attribute rows by it.
ARROW = "→"
_RANDOMISED = ("split:", "bandit:")


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """What to call for one request; ``reason`` says why, for logs and debugging."""

    mode: Mode
    targets: tuple[Target, ...]
    shadows: tuple[Target, ...]
    fallbacks: tuple[Target, ...]
    reason: str
    context: tuple[float, ...] | None = None  # a contextual bandit's encoded context


_Choose = Callable[[Mapping[str, Any], "str | None"], RoutePlan]


class Router:
    """Turns request attributes into a :class:`RoutePlan`; build one per deployed spec."""

    def __init__(
        self,
        spec: EndpointSpec,
        *,
        rng: random.Random,
        bandit: Policy | None = None,
    ) -> None:
        self._spec = spec
        self._rng = rng
        self._shadows = tuple((s.target, s.fraction) for s in spec.shadow)
        self._fallbacks: tuple[Target, ...] = spec.fallback.targets
        self._sticky_key: str | None = None
        self._bandit: Policy | None = None
        self._choose = self._compile(spec, bandit)

    @property
    def spec(self) -> EndpointSpec:
        return self._spec

    @property
    def sticky_key(self) -> str | None:
        """The request parameter or header whose value keeps a user on one variant."""
        return self._sticky_key

    @property
    def bandit(self) -> Policy | None:
        """The live bandit: the feedback fold hands it learned state (``load_state``)."""
        return self._bandit

    def sticky_value(self, attributes: Mapping[str, Any]) -> str | None:
        """The sticky key's value in ``attributes`` as text; None when absent or unsticky."""
        if self._sticky_key is None:
            return None
        value = attributes.get(self._sticky_key)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise InvalidRequestError(
            f"{self._sticky_key!r} must be a string or an integer to pick a sticky variant; "
            f"found {type(value).__name__}"
        )

    def route(self, attributes: Mapping[str, Any], sticky_value: str | None) -> RoutePlan:
        plan = self._choose(attributes, sticky_value)
        if not self._shadows:
            return plan
        rng = self._rng
        shadows = tuple(target for target, fraction in self._shadows if rng.random() < fraction)
        if not shadows:
            return plan
        return RoutePlan(
            plan.mode, plan.targets, shadows, plan.fallbacks, plan.reason, plan.context
        )

    def _plan(self, mode: Mode, targets: tuple[Target, ...], reason: str) -> RoutePlan:
        return RoutePlan(mode, targets, (), self._fallbacks, reason)

    def _compile(self, spec: EndpointSpec, bandit: Policy | None) -> _Choose:
        route = spec.route
        if route.split is not None:
            self._sticky_key = route.split.sticky_key
            weights = [(v.target, v.weight) for v in route.split.variants if v.weight > 0]
            return self._compile_split(spec.name, weights)
        if route.rules is not None:
            rules = [
                (entry.rule.matches, self._plan("single", (entry.target,), f"rule#{index}"))
                for index, entry in enumerate(route.rules)
                if entry.rule is not None and entry.target is not None
            ]
            last = route.rules[-1].default
            assert last is not None  # the spec requires a closing default
            default = self._plan("single", (last,), "default")

            def by_rule(attributes: Mapping[str, Any], sticky: str | None) -> RoutePlan:
                for matches, plan in rules:
                    if matches(attributes):
                        return plan
                return default

            return by_rule
        if route.bandit is not None:
            return self._compile_bandit(route.bandit, bandit)
        if route.ensemble is not None:
            plan = self._plan("ensemble", route.ensemble.targets, "ensemble")
        elif route.cascade is not None:
            plan = self._plan("cascade", route.targets(), "cascade")
        else:
            plan = self._plan("single", route.targets(), "target")
        return lambda attributes, sticky: plan

    def _compile_split(self, endpoint: str, weights: list[tuple[Target, float]]) -> _Choose:
        key = self._sticky_key
        cumulative: list[float] = []
        for _, weight in weights:
            cumulative.append((cumulative[-1] if cumulative else 0.0) + weight)
        total, last = cumulative[-1], len(weights) - 1
        weighted = [self._plan("single", (t,), f"split:weighted{ARROW}{t}") for t, _ in weights]
        unkeyed = [
            self._plan("single", (t,), f"split:weighted (no {key}){ARROW}{t}") for t, _ in weights
        ]
        sticky = [
            (
                f"{target}",
                weight,
                self._plan("single", (target,), f"split:sticky {key} bucket{ARROW}{target}"),
            )
            for target, weight in weights
        ]
        rng = self._rng

        def by_split(attributes: Mapping[str, Any], sticky_value: str | None) -> RoutePlan:
            if key is not None and sticky_value is not None:
                best, best_score = sticky[0][2], math.inf
                for target_text, weight, plan in sticky:
                    score = -math.log(_uniform(endpoint, sticky_value, target_text)) / weight
                    if score < best_score:
                        best, best_score = plan, score
                return best
            index = min(bisect.bisect_right(cumulative, rng.random() * total), last)
            return (weighted if key is None else unkeyed)[index]

        return by_split

    def _compile_bandit(self, route: BanditRoute, bandit: Policy | None) -> _Choose:
        seed = route.seed if route.seed is not None else self._rng.getrandbits(63)
        policy = bandit or build_bandit(route, seed=seed)
        self._bandit = policy
        plans = {
            (arm, reason): self._plan("single", (arm,), f"bandit:{reason}{ARROW}{arm}")
            for arm in route.arms
            for reason in REASONS
        }
        encoder: ContextEncoder | None = getattr(policy, "encoder", None)
        decide = policy.decide
        if encoder is None:
            return lambda attributes, sticky: plans[decide(None)]
        encode, fallbacks = encoder.encode, self._fallbacks

        def by_context(attributes: Mapping[str, Any], sticky: str | None) -> RoutePlan:
            vector = encode(attributes)  # a missing attribute: ExperimentInputError, a 400
            arm, reason = decide(vector)
            context = tuple(vector.tolist())
            reason_text = f"bandit:{reason}{ARROW}{arm}"
            return RoutePlan("single", (arm,), (), fallbacks, reason_text, context)

        return by_context


def build_bandit(route: BanditRoute, *, seed: int | None) -> Policy:
    """The policy a bandit route declares (a fresh one: no learned state)."""
    arms, low, high = route.arms, route.min_share, route.max_share
    if route.algorithm == "epsilon_greedy":
        return EpsilonGreedy(arms, route.epsilon, seed=seed, min_share=low, max_share=high)
    if route.algorithm == "ucb1":
        return UCB1(arms, route.alpha, seed=seed, min_share=low, max_share=high)
    if route.algorithm == "thompson":
        return ThompsonSampling(arms, route.likelihood, seed=seed, min_share=low, max_share=high)
    numeric = [f for f in route.features if isinstance(f, str)]
    categorical = {f.name: f.categories for f in route.features if not isinstance(f, str)}
    encoder = ContextEncoder(numeric, categorical)
    if route.algorithm == "linucb":
        return LinUCB(arms, encoder, route.alpha, seed=seed, min_share=low, max_share=high)
    return LinearThompsonSampling(
        arms, encoder, route.alpha, seed=seed, min_share=low, max_share=high
    )


def routed_target(route: str) -> str | None:
    """The target a split or bandit chose, as text, from a logged route; else None."""
    if not route.startswith(_RANDOMISED) or ARROW not in route:
        return None
    return route.rsplit(ARROW, 1)[1].split(":", 1)[0]


def _uniform(endpoint: str, key: str, target: str) -> float:
    """A uniform number in (0, 1) fixed by the endpoint, the key and the target."""
    digest = hashlib.blake2b(f"{endpoint}|{key}|{target}".encode(), digest_size=8).digest()
    bits = int.from_bytes(digest, "big") >> (64 - _UNIFORM_BITS)
    return (bits + 0.5) / (1 << _UNIFORM_BITS)
