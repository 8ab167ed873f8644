"""Epsilon-greedy (Sutton and Barto, "Reinforcement Learning", 2nd ed., section 2.2).

With probability ``epsilon`` play an arm drawn uniformly, otherwise the arm with
the best mean reward. Arms with no reward yet are played first (uniformly among
them, reason ``explore``), so every arm has a mean before exploitation starts.
Ties between best means go to the arm listed first, so a seed fixes the pulls.

The best arm is computed once per change of the statistics (in ``update``,
``update_many`` or ``load_state``) and cached, so a pull is one ``random()``
call and a lookup: about a tenth of a microsecond.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mlgate.errors import ExperimentInputError
from mlgate.experiments.bandits._base import Arm, Reason
from mlgate.experiments.bandits._counting import CountingPolicy, Counts

__all__ = ["EpsilonGreedy"]


class EpsilonGreedy(CountingPolicy):
    """Explore a uniform arm with probability ``epsilon``, else play the best mean."""

    def __init__(
        self,
        arms: Sequence[Arm],
        epsilon: float = 0.1,
        *,
        seed: int | None = None,
        min_share: float = 0.0,
        max_share: float = 1.0,
    ) -> None:
        if not isinstance(epsilon, int | float) or not 0.0 <= epsilon <= 1.0:
            raise ExperimentInputError(f"epsilon must be a number in [0, 1], found {epsilon!r}")
        super().__init__(arms, seed=seed, min_share=min_share, max_share=max_share)
        self._epsilon = float(epsilon)
        self._random = self._rng.random
        self._decisions: tuple[tuple[Arm, Reason], ...] = tuple(
            (arm, "exploit") for arm in self._arms
        )

    @property
    def epsilon(self) -> float:
        return self._epsilon

    def _pull_unguarded(self, context: Any = None) -> Arm:
        stats = self._stats  # read once: load_state may swap it meanwhile
        best: tuple[Arm, Reason] | None = stats.cache
        if best is None or self._random() < self._epsilon:
            return self._arms[self._explore(stats)]
        return best[0]

    def _decide_unguarded(self, context: Any = None) -> tuple[Arm, Reason]:
        stats = self._stats
        best: tuple[Arm, Reason] | None = stats.cache
        if best is None or self._random() < self._epsilon:
            return self._arms[self._explore(stats)], "explore"
        return best

    def _choose(self, context: Any) -> tuple[int, Reason]:
        stats = self._stats
        best: tuple[Arm, Reason] | None = stats.cache
        if best is None or self._random() < self._epsilon:
            return self._explore(stats), "explore"
        return self._index[best[0]], "exploit"

    def _explore(self, stats: Counts) -> int:
        """A uniform arm, or a uniform untried one while any is untried.

        Called after the epsilon draw when every arm has a mean, or without one while
        some is untried (the cache is None exactly then), as before the cache existed.
        """
        untried = stats.untried
        if untried:
            return self._rng.choice(untried)
        # Not randrange: it is Python code, 10x the cost of random(). The float's 53
        # bits leave each arm's probability within 2**-53 of 1/k.
        return int(self._random() * len(self._arms))

    def _prepare(self, stats: Counts) -> None:
        if stats.untried:
            stats.cache = None
        else:
            means = stats.means()
            stats.cache = self._decisions[max(range(len(means)), key=means.__getitem__)]

    def _scores(self, context: Any) -> list[float]:
        stats = self._stats
        return [m if n else math.inf for m, n in zip(stats.means(), stats.counts, strict=True)]
