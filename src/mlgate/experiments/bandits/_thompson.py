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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
    """A block of precomputed picks for one version of the statistics."""

    __slots__ = ("at", "picks", "shape", "size", "used")

    def __init__(self, shape: tuple[FloatArray, FloatArray, FloatArray]) -> None:
        self.shape = shape  # bernoulli: (alpha, beta, -); gaussian: (loc, scale, df)
        self.picks: list[int] = []
        self.at = 0
        self.size = 0
        self.used = 0  # pulls served from this posterior so far


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

    def pull(self, context: Any = None) -> Arm:
        """The arm to play (``decide`` without the reason, on a shorter path)."""
        draws = self._stats.cache
        if draws is not None and self._guard is None and draws.at < len(draws.picks):
            pick: int = draws.picks[draws.at]
            draws.at += 1
            draws.used += 1
            return self._arms[pick]
        return self.decide(context)[0]

    @property
    def likelihood(self) -> Likelihood:
        return self._likelihood

    def _choose(self, context: Any) -> tuple[int, Reason]:
        stats = self._stats
        if stats.untried and self._likelihood == "gaussian":
            return self._rng.choice(stats.untried), "explore"
        draws: _Draws | None = stats.cache
        if draws is None:
            if self._last is not None:
                self._pace = min(max(self._last.used, _FIRST_BLOCK), _MAX_BLOCK)
            draws = stats.cache = _Draws(self._posterior(stats))
            self._last = draws
        if draws.at >= len(draws.picks):
            draws.size = min(2 * draws.size, _MAX_BLOCK) if draws.size else self._pace
            draws.picks = np.argmax(self._sample(draws, draws.size), axis=1).tolist()
            draws.at = 0
        pick: int = draws.picks[draws.at]
        draws.at += 1
        draws.used += 1
        return pick, "sample"

    def _scores(self, context: Any) -> list[float]:
        stats = self._stats
        scores: list[float] = self._sample(_Draws(self._posterior(stats)), 1)[0].tolist()
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

    def _sample(self, draws: _Draws, size: int) -> FloatArray:
        first, second, third = draws.shape
        shape = (size, first.size)
        if self._likelihood == "bernoulli":
            return self._np_rng.beta(first, second, size=shape)
        return first + second * self._np_rng.standard_t(third, size=shape)

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
