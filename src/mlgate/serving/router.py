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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from mlgate.errors import InvalidRequestError, PolicyError
from mlgate.serving.spec import EndpointSpec

__all__ = ["BanditPolicy", "EpsilonGreedy", "RoutePlan", "Router", "Target"]

Target = int | str
Mode = Literal["single", "ensemble", "cascade"]
_UNIFORM_BITS = 53  # exactly representable in a float, so u lies strictly inside (0, 1)


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """What to call for one request; ``reason`` says why, for logs and debugging."""

    mode: Mode
    targets: tuple[Target, ...]
    shadows: tuple[Target, ...]
    fallbacks: tuple[Target, ...]
    reason: str


class BanditPolicy(Protocol):
    """An online policy over arms: pull one per request, learn from rewards."""

    def pull(self, context: Mapping[str, Any]) -> Target: ...

    def update(self, arm: Target, reward: float) -> None: ...


class EpsilonGreedy:
    """Explore a uniform arm with probability ``epsilon``, else play the best mean reward.

    Arms never rewarded are played first (uniformly among them), so every arm
    gets a mean before exploitation starts. Ties between best means go to the
    arm listed first, so a given random stream always yields the same pulls.
    """

    def __init__(self, arms: Sequence[Target], epsilon: float, *, rng: random.Random) -> None:
        if not arms or len(set(arms)) != len(arms):
            raise PolicyError(f"a bandit needs distinct arms; found {list(arms)}")
        if not 0.0 <= epsilon <= 1.0:
            raise PolicyError(f"epsilon must be in [0, 1]; found {epsilon}")
        self._arms = tuple(arms)
        self._epsilon = epsilon
        self._rng = rng
        self._counts = dict.fromkeys(self._arms, 0)
        self._sums = dict.fromkeys(self._arms, 0.0)
        self._unplayed = list(self._arms)

    @property
    def arms(self) -> tuple[Target, ...]:
        return self._arms

    def pull(self, context: Mapping[str, Any]) -> Target:
        return self.decide(context)[0]

    def decide(self, context: Mapping[str, Any]) -> tuple[Target, bool]:
        """The arm to play and whether it was an exploration (for the plan's reason)."""
        if self._unplayed:
            return self._rng.choice(self._unplayed), True
        if self._rng.random() < self._epsilon:
            return self._rng.choice(self._arms), True
        return max(self._arms, key=self.mean), False  # max keeps the first of equals

    def mean(self, arm: Target) -> float:
        count = self._counts[arm]
        return self._sums[arm] / count if count else 0.0

    def update(self, arm: Target, reward: float) -> None:
        if arm not in self._counts:
            raise InvalidRequestError(
                f"arm {arm!r} is not one of this bandit's arms {list(self._arms)}"
            )
        if not math.isfinite(reward):
            raise InvalidRequestError(f"reward for arm {arm!r} must be a finite number")
        self._counts[arm] += 1
        self._sums[arm] += reward
        self._unplayed = [a for a in self._arms if self._counts[a] == 0]

    def load_stats(self, stats: Mapping[Target, tuple[int, float]]) -> None:
        """Replace local state with the store's ``(count, reward sum)`` per arm.

        Every server process loads the same totals, so they share one policy.
        Arms absent from ``stats`` count as unplayed; arms no longer in the spec
        are ignored, so stats left from an older spec do not break serving.
        """
        counts = dict.fromkeys(self._arms, 0)
        sums = dict.fromkeys(self._arms, 0.0)
        for arm, (count, total) in stats.items():
            if arm not in counts:
                continue
            if count < 0 or not math.isfinite(total) or (count == 0 and total != 0):
                raise PolicyError(
                    f"bandit stats for arm {arm!r} are impossible: count {count}, "
                    f"reward sum {total}; repair the stored feedback"
                )
            counts[arm], sums[arm] = int(count), float(total)
        self._counts, self._sums = counts, sums
        self._unplayed = [a for a in self._arms if counts[a] == 0]

    def stats(self) -> dict[Target, tuple[int, float]]:
        return {arm: (self._counts[arm], self._sums[arm]) for arm in self._arms}


_Choose = Callable[[Mapping[str, Any], "str | None"], RoutePlan]


class Router:
    """Turns request attributes into a :class:`RoutePlan`; build one per deployed spec."""

    def __init__(
        self,
        spec: EndpointSpec,
        *,
        rng: random.Random,
        bandit: BanditPolicy | None = None,
    ) -> None:
        self._spec = spec
        self._rng = rng
        self._shadows = tuple((s.target, s.fraction) for s in spec.shadow)
        self._fallbacks: tuple[Target, ...] = spec.fallback.targets
        self._sticky_key: str | None = None
        self._bandit: BanditPolicy | None = None
        self._choose = self._compile(spec, bandit)

    @property
    def spec(self) -> EndpointSpec:
        return self._spec

    @property
    def sticky_key(self) -> str | None:
        """The request parameter or header whose value keeps a user on one variant."""
        return self._sticky_key

    @property
    def bandit(self) -> BanditPolicy | None:
        """The live bandit, for the feedback path to ``update`` or ``load_stats``."""
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
        return RoutePlan(plan.mode, plan.targets, shadows, plan.fallbacks, plan.reason)

    def _plan(self, mode: Mode, targets: tuple[Target, ...], reason: str) -> RoutePlan:
        return RoutePlan(mode, targets, (), self._fallbacks, reason)

    def _compile(self, spec: EndpointSpec, bandit: BanditPolicy | None) -> _Choose:
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
            return self._compile_bandit(
                route.bandit.arms, route.bandit.epsilon, route.bandit.seed, bandit
            )
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
        weighted = [self._plan("single", (t,), f"split:weighted→{t}") for t, _ in weights]
        unkeyed = [self._plan("single", (t,), f"split:weighted (no {key})→{t}") for t, _ in weights]
        sticky = [
            (
                f"{target}",
                weight,
                self._plan("single", (target,), f"split:sticky {key} bucket→{target}"),
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

    def _compile_bandit(
        self,
        arms: tuple[Target, ...],
        epsilon: float,
        seed: int | None,
        bandit: BanditPolicy | None,
    ) -> _Choose:
        policy = bandit or EpsilonGreedy(
            arms, epsilon, rng=random.Random(seed) if seed is not None else self._rng
        )
        self._bandit = policy
        explained = {
            (arm, explored): self._plan(
                "single", (arm,), f"bandit:{'explore' if explored else 'exploit'}"
            )
            for arm in arms
            for explored in (True, False)
        }
        if isinstance(policy, EpsilonGreedy):
            decide = policy.decide
            return lambda attributes, sticky: explained[decide(attributes)]
        pulled = {arm: self._plan("single", (arm,), "bandit") for arm in arms}

        def by_bandit(attributes: Mapping[str, Any], sticky: str | None) -> RoutePlan:
            arm = policy.pull(attributes)
            return pulled.get(arm) or self._plan("single", (arm,), "bandit")

        return by_bandit


def _uniform(endpoint: str, key: str, target: str) -> float:
    """A uniform number in (0, 1) fixed by the endpoint, the key and the target."""
    digest = hashlib.blake2b(f"{endpoint}|{key}|{target}".encode(), digest_size=8).digest()
    bits = int.from_bytes(digest, "big") >> (64 - _UNIFORM_BITS)
    return (bits + 0.5) / (1 << _UNIFORM_BITS)
