"""Per-arm counts, reward sums and sums of squares: the statistics of the non-contextual policies.

Epsilon-greedy, UCB1 and both Thompson samplers need only, per arm, the number
of rewards ``n``, their sum and their sum of squares (a mean and a variance).
These live in one :class:`Counts` object: ``update`` adds to it, ``update_many``
builds a new one with ``numpy.add.at`` (which adds element by element in order,
so a batch gives bit-for-bit the sums sequential updates would), and
``load_state`` swaps in a fresh one. Each object also carries ``cache``, the
pull side's derived data (the best arm, the Thompson posterior and its block of
draws), rebuilt by the policy's ``_prepare`` whenever the statistics change:
in place after ``update``, and on the new object *before* it is swapped in after
``update_many`` and ``load_state``, so a concurrent pull never sees statistics
without their cache. Pulls between updates then cost next to nothing.

The state layout, shared by all three policies (a state saved by one loads into
another over the same arms)::

    {"policy": "UCB1", "arms": ["a", "b"], "counts": [12, 30],
     "sums": [3.0, 11.0], "sums_squares": [3.0, 11.0]}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlgate.errors import ExperimentInputError
from mlgate.experiments.bandits._base import (
    Arm,
    BasePolicy,
    FloatArray,
    IndexArray,
    state_vector,
)

__all__ = ["Counts", "CountingPolicy"]


class Counts:
    """One consistent set of per-arm statistics plus the pull side's cache over it."""

    __slots__ = ("cache", "counts", "sums", "sums_squares", "total", "untried")

    def __init__(self, counts: list[int], sums: list[float], sums_squares: list[float]) -> None:
        self.counts = counts
        self.sums = sums
        self.sums_squares = sums_squares
        self.total = sum(counts)
        self.untried = [i for i, count in enumerate(counts) if count == 0]
        self.cache: Any = None

    def means(self) -> list[float]:
        return [s / n if n else 0.0 for s, n in zip(self.sums, self.counts, strict=True)]


class CountingPolicy(BasePolicy):
    """A policy whose statistics are :class:`Counts`; subclasses choose arms from them."""

    def __init__(
        self,
        arms: Sequence[Arm],
        *,
        seed: int | None,
        min_share: float,
        max_share: float,
    ) -> None:
        super().__init__(arms, seed=seed, min_share=min_share, max_share=max_share)
        size = len(self._arms)
        self._stats = Counts([0] * size, [0.0] * size, [0.0] * size)

    def _prepare(self, stats: Counts) -> None:
        """Set ``stats.cache`` from ``stats`` (subclasses; called on every change)."""

    def counts(self) -> dict[Arm, int]:
        """Rewards learned per arm."""
        return dict(zip(self._arms, self._stats.counts, strict=True))

    def means(self) -> dict[Arm, float]:
        """Mean reward per arm (0.0 for an arm with no reward yet)."""
        return dict(zip(self._arms, self._stats.means(), strict=True))

    def _learn(self, index: int, reward: float, context: Any) -> None:
        stats = self._stats
        stats.counts[index] += 1
        stats.sums[index] += reward
        stats.sums_squares[index] += reward * reward
        stats.total += 1
        if stats.untried and stats.counts[index] == 1:
            stats.untried = [i for i in stats.untried if i != index]
        self._prepare(stats)

    def _learn_many(self, indices: IndexArray, rewards: FloatArray, contexts: Any) -> None:
        if indices.size == 0:
            return
        old = self._stats
        counts = np.array(old.counts, dtype=np.int64)
        sums = np.array(old.sums)
        squares = np.array(old.sums_squares)
        np.add.at(counts, indices, 1)
        np.add.at(sums, indices, rewards)
        np.add.at(squares, indices, rewards * rewards)
        stats = Counts(counts.tolist(), sums.tolist(), squares.tolist())
        self._prepare(stats)
        self._stats = stats

    def _export(self) -> dict[str, Any]:
        stats = self._stats
        return {
            "counts": list(stats.counts),
            "sums": list(stats.sums),
            "sums_squares": list(stats.sums_squares),
        }

    def _import(self, state: Mapping[str, Any], order: list[int]) -> None:
        counts = state_vector(state, "counts", order)
        sums = state_vector(state, "sums", order)
        squares = state_vector(state, "sums_squares", order)
        for arm, n, total, square in zip(self._arms, counts, sums, squares, strict=True):
            if n < 0 or n != math.floor(n):
                raise ExperimentInputError(
                    f"state counts must be non-negative integers; arm {arm!r} has {n}"
                )
            if square < 0 or (n == 0 and (total != 0 or square != 0)):
                raise ExperimentInputError(
                    f"state for arm {arm!r} is impossible: count {n:g}, sum {total}, sum of "
                    f"squares {square}; save it again with state()"
                )
            # Cauchy-Schwarz: sum^2 <= n * sum of squares (up to rounding).
            if total * total > n * square * (1 + 1e-9) + 1e-9:
                raise ExperimentInputError(
                    f"state for arm {arm!r} is impossible: sum {total} is too large for "
                    f"count {n:g} and sum of squares {square}"
                )
            self._check_state_arm(arm, int(n), float(total))
        stats = Counts([int(n) for n in counts], sums.tolist(), squares.tolist())
        self._prepare(stats)
        self._stats = stats  # one reference swap: see _base's thread rule

    def _check_state_arm(self, arm: Arm, count: int, total: float) -> None:
        """Reject statistics this policy's model cannot have produced."""
