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
once per change (in ``update``, ``update_many`` or ``load_state``) and cached;
pulls in between are a lookup. (With batched
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
        self._decisions: tuple[tuple[Arm, Reason], ...] = tuple((arm, "ucb") for arm in self._arms)

    @property
    def alpha(self) -> float:
        return self._alpha

    def bounds(self) -> dict[Arm, float]:
        """Each arm's current upper confidence bound (inf for an untried arm)."""
        return dict(zip(self._arms, _bounds(self._stats, self._alpha), strict=True))

    def _pull_unguarded(self, context: Any = None) -> Arm:
        best: tuple[Arm, Reason] | None = self._stats.cache
        if best is None:  # an arm is untried
            return self._arms[self._choose(context)[0]]
        return best[0]

    def _decide_unguarded(self, context: Any = None) -> tuple[Arm, Reason]:
        best: tuple[Arm, Reason] | None = self._stats.cache
        if best is None:
            index, reason = self._choose(context)
            return self._arms[index], reason
        return best

    def _choose(self, context: Any) -> tuple[int, Reason]:
        stats = self._stats
        best: tuple[Arm, Reason] | None = stats.cache
        if best is None:
            return self._rng.choice(stats.untried), "explore"
        return self._index[best[0]], "ucb"

    def _prepare(self, stats: Counts) -> None:
        if stats.untried:
            stats.cache = None
        else:
            bounds = _bounds(stats, self._alpha)
            stats.cache = self._decisions[max(range(len(bounds)), key=bounds.__getitem__)]

    def _scores(self, context: Any) -> list[float]:
        return _bounds(self._stats, self._alpha)


def _bounds(stats: Counts, alpha: float) -> list[float]:
    log_total = 2.0 * math.log(stats.total) if stats.total else 0.0
    return [
        s / n + alpha * math.sqrt(log_total / n) if n else math.inf
        for s, n in zip(stats.sums, stats.counts, strict=True)
    ]
