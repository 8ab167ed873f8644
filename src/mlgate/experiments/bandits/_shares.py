"""Traffic floors and caps: no arm starves, no arm takes everything.

A bandit is only as good as its reward signal. A broken reward pipeline, a
reward that rewards the wrong thing, or plain bad luck early on can send (nearly)
all traffic to one model, and a model the policy has written off is never
pulled again, so a fix to it is never noticed. ``min_share`` and ``max_share``
bound every arm's share of the pulls:

* **floor**: before the policy chooses, if the least-pulled arm would hold less
  than ``min_share`` of the pulls including this one, this pull goes to it;
* **cap**: if the arm the policy chose would then hold more than ``max_share``,
  the pull goes to the policy's best arm among those under their cap (the
  policy scores the arms afresh, so a capped Thompson arm yields to the next
  best sample, not to an arbitrary arm).

The bounds are enforced deterministically on this process's own pull counters,
so after ``n`` pulls every arm holds within a pull or two of ``min_share * n``
or more, and of ``max_share * n`` or fewer (over the first few pulls no
assignment can respect both). They are pull-side bookkeeping, not learned statistics: they
are not part of ``state()``, and each server process bounds its own traffic.
Feasibility needs ``min_share * k <= 1 <= max_share * k`` for ``k`` arms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from mlgate.errors import ExperimentInputError

__all__ = ["REASONS", "Arm", "Reason", "Scores", "ShareGuard", "check_shares"]

Arm = str | int
Reason = Literal["explore", "exploit", "ucb", "sample", "floor", "cap"]
REASONS: tuple[Reason, ...] = ("explore", "exploit", "ucb", "sample", "floor", "cap")
"""Why ``decide`` chose an arm: ``explore`` (a random or not-yet-tried arm), ``exploit``
(epsilon-greedy's best mean), ``ucb`` (highest upper confidence bound), ``sample``
(highest posterior sample), ``floor`` (sent to a starved arm, see ``min_share``),
``cap`` (the policy's arm was at ``max_share``; its best arm under the cap)."""

Scores = Sequence[float] | NDArray[np.float64]


def check_shares(min_share: float, max_share: float, arms: int) -> tuple[float, float]:
    """The bounds as floats, or an error saying why they cannot all hold at once."""
    for name, value in (("min_share", min_share), ("max_share", max_share)):
        if not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= 1:
            raise ExperimentInputError(f"{name} must be a number in [0, 1], found {value!r}")
    low, high = float(min_share), float(max_share)
    if low > high:
        raise ExperimentInputError(
            f"min_share ({low}) is above max_share ({high}); lower min_share or raise max_share"
        )
    if low * arms > 1.0 + 1e-12:
        raise ExperimentInputError(
            f"min_share {low} for each of {arms} arms adds up to {low * arms:g} > 1; "
            f"use at most {1 / arms:.6g}"
        )
    if high * arms < 1.0 - 1e-12:
        raise ExperimentInputError(
            f"max_share {high} for each of {arms} arms adds up to {high * arms:g} < 1, "
            f"so some traffic would have nowhere to go; use at least {1 / arms:.6g}"
        )
    return low, high


class ShareGuard:
    """Per-process pull counters and the floor/cap rule above."""

    __slots__ = ("_counts", "_high", "_low", "_total")

    def __init__(self, arms: int, min_share: float, max_share: float) -> None:
        self._low, self._high = check_shares(min_share, max_share, arms)
        self._counts = [0] * arms
        self._total = 0

    @property
    def active(self) -> bool:
        """Whether the bounds can ever change a pull (defaults 0 and 1 never do)."""
        return self._low > 0.0 or self._high < 1.0

    @property
    def bounds(self) -> tuple[float, float]:
        return self._low, self._high

    @property
    def counts(self) -> list[int]:
        return list(self._counts)

    def admit(self, arm: int, reason: Reason, scores: Callable[[], Scores]) -> tuple[int, Reason]:
        """The arm this pull goes to (the policy's ``arm`` or a substitute), counted."""
        counts = self._counts
        upcoming = self._total + 1
        if self._low > 0.0:
            starved = min(range(len(counts)), key=counts.__getitem__)
            if starved != arm and counts[starved] < self._low * upcoming:
                arm, reason = starved, "floor"
        if self._high < 1.0 and reason != "floor" and counts[arm] + 1 > self._high * upcoming:
            allowed = [i for i, c in enumerate(counts) if c + 1 <= self._high * upcoming]
            if not allowed:  # early on, or max_share = 1/k: the least-pulled arms overshoot least
                fewest = min(counts)
                allowed = [i for i, c in enumerate(counts) if c == fewest]
            if arm not in allowed:
                values = scores()
                arm, reason = max(allowed, key=lambda i: values[i]), "cap"
        counts[arm] += 1
        self._total = upcoming
        return arm, reason
