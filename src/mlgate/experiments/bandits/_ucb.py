"""UCB1 (Auer, Cesa-Bianchi and Fischer, "Finite-time Analysis of the Multiarmed
Bandit Problem", Machine Learning 47, 2002).

Every arm is tried once first (uniformly among the untried, reason ``explore``);
then each pull plays the arm with the highest upper confidence bound

    mean_a + alpha * sqrt(2 ln N / n_a)

where ``n_a`` counts arm ``a``'s rewards and ``N`` all rewards. ``alpha = 1`` is
the paper's UCB1, with regret logarithmic in ``N`` for rewards in [0, 1]; a
smaller ``alpha`` explores less (MABWiser's ``LearningPolicy.UCB1(alpha)`` is the
same formula). Ties go to the arm listed first.

The bounds only change when a reward arrives, so the winning arm is computed
once per change and cached; pulls in between are a lookup. (With batched
updates UCB1 therefore plays one arm for a whole batch, as it would in any
library; ``min_share`` keeps the others in play if that matters.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mlgate.errors import ExperimentInputError
from mlgate.experiments.bandits._base import Arm, Reason
from mlgate.experiments.bandits._counting import CountingPolicy, Counts

__all__ = ["UCB1"]


class UCB1(CountingPolicy):
    """Play every arm once, then the arm with the highest upper confidence bound."""

    def __init__(
        self,
        arms: Sequence[Arm],
        alpha: float = 1.0,
        *,
        seed: int | None = None,
        min_share: float = 0.0,
        max_share: float = 1.0,
    ) -> None:
        if not isinstance(alpha, int | float) or not 0.0 <= alpha < math.inf:
            raise ExperimentInputError(f"alpha must be a finite number >= 0, found {alpha!r}")
        super().__init__(arms, seed=seed, min_share=min_share, max_share=max_share)
        self._alpha = float(alpha)

    @property
    def alpha(self) -> float:
        return self._alpha

    def bounds(self) -> dict[Arm, float]:
        """Each arm's current upper confidence bound (inf for an untried arm)."""
        return dict(zip(self._arms, _bounds(self._stats, self._alpha), strict=True))

    def pull(self, context: Any = None) -> Arm:
        """The arm to play (``decide`` without the reason, on a shorter path)."""
        best: int | None = self._stats.cache
        if best is not None and self._guard is None:
            return self._arms[best]
        return self.decide(context)[0]

    def _choose(self, context: Any) -> tuple[int, Reason]:
        stats = self._stats
        if stats.untried:
            return self._rng.choice(stats.untried), "explore"
        best = stats.cache
        if best is None:
            bounds = _bounds(stats, self._alpha)
            best = stats.cache = max(range(len(bounds)), key=bounds.__getitem__)
        return best, "ucb"

    def _scores(self, context: Any) -> list[float]:
        return _bounds(self._stats, self._alpha)


def _bounds(stats: Counts, alpha: float) -> list[float]:
    log_total = 2.0 * math.log(stats.total) if stats.total else 0.0
    return [
        s / n + alpha * math.sqrt(log_total / n) if n else math.inf
        for s, n in zip(stats.sums, stats.counts, strict=True)
    ]
