"""Epsilon-greedy (Sutton and Barto, "Reinforcement Learning", 2nd ed., section 2.2).

With probability ``epsilon`` play an arm drawn uniformly, otherwise the arm with
the best mean reward. Arms with no reward yet are played first (uniformly among
them, reason ``explore``), so every arm has a mean before exploitation starts.
Ties between best means go to the arm listed first, so a seed fixes the pulls.

The best arm is computed once per change of the statistics and cached, so a pull
is one ``random()`` call and a lookup: well under a microsecond.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mlgate.errors import ExperimentInputError
from mlgate.experiments.bandits._base import Arm, Reason
from mlgate.experiments.bandits._counting import CountingPolicy

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

    @property
    def epsilon(self) -> float:
        return self._epsilon

    def pull(self, context: Any = None) -> Arm:
        """The arm to play (``decide`` without the reason, on a shorter path)."""
        stats = self._stats
        best: int | None = stats.cache
        if best is not None and self._guard is None and not stats.untried:
            if self._rng.random() < self._epsilon:
                return self._arms[self._rng.randrange(len(self._arms))]
            return self._arms[best]
        return self.decide(context)[0]

    def _choose(self, context: Any) -> tuple[int, Reason]:
        stats = self._stats
        rng = self._rng
        if stats.untried:
            return rng.choice(stats.untried), "explore"
        if rng.random() < self._epsilon:
            return rng.randrange(len(self._arms)), "explore"
        best = stats.cache
        if best is None:
            means = stats.means()
            best = stats.cache = max(range(len(means)), key=means.__getitem__)
        return best, "exploit"

    def _scores(self, context: Any) -> list[float]:
        stats = self._stats
        return [m if n else math.inf for m, n in zip(stats.means(), stats.counts, strict=True)]
