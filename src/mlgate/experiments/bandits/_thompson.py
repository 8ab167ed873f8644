"""Thompson sampling (Thompson 1933; Chapelle and Li, "An Empirical Evaluation of
Thompson Sampling", NeurIPS 2011): play the arm whose posterior draw is highest.

Two reward models, chosen with ``likelihood``:

* ``"bernoulli"`` (rewards in [0, 1], e.g. a click): the mean of arm ``a`` has a
  ``Beta(prior_alpha + s_a, prior_beta + n_a - s_a)`` posterior, where ``s_a``
  sums its rewards (a fractional reward counts as a fractional success, as in
  Agrawal and Goyal 2012). A reward outside [0, 1] is an error.
* ``"gaussian"`` (any real reward, e.g. revenue or latency): normal rewards with
  unknown mean and variance under a normal-gamma prior that is flat in the mean
  and holds half a pseudo-observation of spread ``prior_sd`` (Gelman et al.,
  "Bayesian Data Analysis", 3rd ed., section 3.3). The mean's posterior is then a
  Student t with ``n + 1`` degrees of freedom, centred on the sample mean, with
  scale ``sqrt((prior_sd^2 + SS) / ((n + 1) n))`` (``SS``: the sum of squared
  deviations). ``prior_sd`` keeps an arm whose first rewards happen to be equal
  from looking certain. Untried arms are played first (reason ``explore``).

Speed. Between two updates the posterior does not change, so successive pulls are
independent draws from one distribution; drawing them a block at a time with
NumPy is the same process at a fraction of the per-call cost. NumPy's cost is
mostly per call, not per draw (16 draws cost about what 1 does), so the first
block after an update is as large as the number of pulls made between the two
previous updates (at least 16, at most 512), and each block used up doubles the
next: a policy updated after every pull pays one small NumPy call per pull, one
updated in steady batches (as the server does) one call per batch.

The posterior and its first block are computed when the statistics change
(``update``, ``update_many``, ``load_state``), on the new statistics before they
are swapped in; so in the server, where a learner thread hands over statistics
with ``load_state``, the sampling runs on that thread and the event loop's pulls
only read the next pick. A change of statistics discards any picks left from the
old posterior, so every pull after an update samples the new one; picks are
rows of independent draws, each used once.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import numpy as np

from mlgate.errors import ExperimentInputError
from mlgate.experiments.bandits._base import Arm, FloatArray, Reason
from mlgate.experiments.bandits._counting import CountingPolicy, Counts

__all__ = ["Likelihood", "ThompsonSampling"]

Likelihood = Literal["bernoulli", "gaussian"]
_FIRST_BLOCK = 16
_MAX_BLOCK = 512


class _Draws:
    """The posterior of one version of the statistics and its current block of picks."""

    __slots__ = ("drawn", "next", "picks", "shape", "size")

    def __init__(self, shape: tuple[FloatArray, FloatArray, FloatArray]) -> None:
        self.shape = shape  # bernoulli: (alpha, beta, -); gaussian: (loc, scale, df)
        self.picks: Iterator[int] = iter(())
        self.next: Callable[[], int] = self.picks.__next__  # StopIteration: draw a block
        self.drawn = 0  # picks drawn from this posterior so far
        self.size = 0  # the last block's size (0: none drawn yet)

    def used(self) -> int:
        """Pulls served from this posterior so far."""
        return self.drawn - operator.length_hint(self.picks)


class ThompsonSampling(CountingPolicy):
    """Sample each arm's mean from its posterior and play the highest sample."""

    def __init__(
        self,
        arms: Sequence[Arm],
        likelihood: Likelihood = "bernoulli",
        *,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        prior_sd: float = 1.0,
        seed: int | None = None,
        min_share: float = 0.0,
        max_share: float = 1.0,
    ) -> None:
        if likelihood not in ("bernoulli", "gaussian"):
            raise ExperimentInputError(
                f"likelihood must be 'bernoulli' (rewards in [0, 1]) or 'gaussian' "
                f"(any real reward), found {likelihood!r}"
            )
        for name, value in (
            ("prior_alpha", prior_alpha),
            ("prior_beta", prior_beta),
            ("prior_sd", prior_sd),
        ):
            if not isinstance(value, int | float) or not 0.0 < value < math.inf:
                raise ExperimentInputError(f"{name} must be a finite number > 0, found {value!r}")
        super().__init__(arms, seed=seed, min_share=min_share, max_share=max_share)
        self._likelihood: Likelihood = likelihood
        self._prior = (float(prior_alpha), float(prior_beta), float(prior_sd))
        self._pace = _FIRST_BLOCK  # pulls between the last two updates, to size blocks
        self._last: _Draws | None = None
        self._decisions: tuple[tuple[Arm, Reason], ...] = tuple(
            (arm, "sample") for arm in self._arms
        )
        self._prepare(self._stats)

    def _pull_unguarded(self, context: Any = None) -> Arm:
        draws: _Draws = self._stats.cache
        try:
            return self._arms[draws.next()]
        except StopIteration:  # block used up (or an untried Gaussian arm)
            return self._arms[self._choose(context)[0]]

    def _decide_unguarded(self, context: Any = None) -> tuple[Arm, Reason]:
        draws: _Draws = self._stats.cache
        try:
            return self._decisions[draws.next()]
        except StopIteration:
            index, reason = self._choose(context)
            return self._arms[index], reason

    @property
    def likelihood(self) -> Likelihood:
        return self._likelihood

    def _choose(self, context: Any) -> tuple[int, Reason]:
        stats = self._stats
        if stats.untried and self._likelihood == "gaussian":
            return self._rng.choice(stats.untried), "explore"
        draws: _Draws = stats.cache
        try:
            return draws.next(), "sample"
        except StopIteration:  # the block is used up: the next one is twice as large
            self._draw(draws, min(max(2 * draws.size, _FIRST_BLOCK), _MAX_BLOCK))
            return draws.next(), "sample"

    def _prepare(self, stats: Counts) -> None:
        draws = _Draws(self._posterior(stats))
        if not (stats.untried and self._likelihood == "gaussian"):
            # The first block: as many picks as the last posterior served.
            last = self._last
            if last is not None:
                self._pace = min(max(last.used(), _FIRST_BLOCK), _MAX_BLOCK)
            self._last = draws
            self._draw(draws, self._pace)
        stats.cache = draws

    def _draw(self, draws: _Draws, size: int) -> None:
        picks = iter(self._picks(draws.shape, size))
        draws.picks, draws.next = picks, picks.__next__
        draws.size = size
        draws.drawn += size

    def _picks(self, shape: tuple[FloatArray, FloatArray, FloatArray], size: int) -> list[int]:
        """``size`` independent pulls: the argmax of each row of posterior draws."""
        picks: list[int] = np.argmax(self._sample(shape, size), axis=1).tolist()
        return picks

    def _scores(self, context: Any) -> list[float]:
        stats = self._stats
        scores: list[float] = self._sample(stats.cache.shape, 1)[0].tolist()
        if self._likelihood == "gaussian":
            for i in stats.untried:
                scores[i] = math.inf
        return scores

    def _posterior(self, stats: Counts) -> tuple[FloatArray, FloatArray, FloatArray]:
        counts = np.array(stats.counts, dtype=np.float64)
        sums = np.array(stats.sums)
        prior_alpha, prior_beta, prior_sd = self._prior
        if self._likelihood == "bernoulli":
            # max(., 0): a sum of [0, 1] rewards can exceed its count by rounding only.
            failures = np.maximum(counts - sums, 0.0)
            return prior_alpha + sums, prior_beta + failures, counts
        seen = np.maximum(counts, 1.0)  # untried arms never reach the sampler
        mean = sums / seen
        deviations = np.maximum(np.array(stats.sums_squares) - sums * mean, 0.0)
        scale = np.sqrt((prior_sd * prior_sd + deviations) / ((seen + 1.0) * seen))
        return mean, scale, seen + 1.0

    def _sample(self, shape: tuple[FloatArray, FloatArray, FloatArray], size: int) -> FloatArray:
        first, second, third = shape
        rows = (size, first.size)
        if self._likelihood == "bernoulli":
            return self._np_rng.beta(first, second, size=rows)
        return first + second * self._np_rng.standard_t(third, size=rows)

    def _check_reward(self, value: float, arm: Arm) -> None:
        if self._likelihood == "bernoulli" and not 0.0 <= value <= 1.0:
            raise ExperimentInputError(
                f"reward {value} for arm {arm!r} is outside [0, 1], which Bernoulli Thompson "
                "sampling needs (1 = success); rescale it, or use likelihood='gaussian'"
            )

    def _check_rewards(self, values: FloatArray) -> None:
        if self._likelihood == "bernoulli" and values.size:
            outside = (values < 0.0) | (values > 1.0)
            if outside.any():
                at = int(np.flatnonzero(outside)[0])
                raise ExperimentInputError(
                    f"reward {values[at]} at index {at} is outside [0, 1], which Bernoulli "
                    "Thompson sampling needs; rescale the rewards or use "
                    "likelihood='gaussian' (no reward of this batch was used)"
                )

    def _check_state_arm(self, arm: Arm, count: int, total: float) -> None:
        if self._likelihood == "bernoulli" and not -1e-9 <= total <= count * (1 + 1e-12) + 1e-9:
            raise ExperimentInputError(
                f"state for arm {arm!r} has reward sum {total} for {count} rewards, impossible "
                "for Bernoulli rewards in [0, 1]; load it into likelihood='gaussian' instead"
            )
