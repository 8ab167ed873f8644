"""Bandit policies: route traffic between model versions by the rewards they earn.

Every policy takes the arm names (at least two distinct strings or integers) and
a ``seed``, and speaks river's verbs: ``pull(context=None) -> arm`` and
``update(arm, reward, context=None)``; plus ``decide(context) -> (arm, reason)``
(``reason`` is one of :data:`REASONS`, for the router's logs),
``update_many(arms, rewards, contexts=None)`` (a batch, equal to sequential
updates) and ``state()`` / ``load_state(state)`` (JSON-able sufficient statistics,
swapped in whole, for sharing between a learner thread and the serving one).

* :class:`EpsilonGreedy`: explore uniformly with probability ``epsilon``.
* :class:`UCB1`: every arm once, then the highest upper confidence bound.
* :class:`ThompsonSampling`: Beta-Bernoulli or Gaussian posterior sampling.
* :class:`LinUCB`, :class:`LinearThompsonSampling`: one ridge regression per arm on
  the request's attributes, encoded by a :class:`ContextEncoder`.

Every policy also takes ``min_share`` and ``max_share``: bounds on each arm's
share of this process's pulls, so a bad reward signal can neither hand one model
all the traffic nor starve another (see ``_shares``).

**Why not MABWiser or river.** MABWiser (a benchmark peer) has the same
algorithms but spends tens of microseconds per ``predict`` in dictionaries and
copies, has no traffic bounds and no shareable state; river's bandits are
non-contextual and pull one arm per Python call with no batch update. The server
pulls on every request, so pulls here cost about a microsecond (see
BENCHMARKS.md), with regret no worse than MABWiser's on the same problems.
"""

from __future__ import annotations

from mlgate.experiments.bandits._base import REASONS, Arm, BasePolicy, Policy, Reason
from mlgate.experiments.bandits._context import ContextEncoder
from mlgate.experiments.bandits._epsilon import EpsilonGreedy
from mlgate.experiments.bandits._linear import LinearPolicy, LinearThompsonSampling, LinUCB
from mlgate.experiments.bandits._thompson import ThompsonSampling
from mlgate.experiments.bandits._ucb import UCB1

__all__ = [
    "REASONS",
    "UCB1",
    "Arm",
    "BasePolicy",
    "ContextEncoder",
    "EpsilonGreedy",
    "LinUCB",
    "LinearPolicy",
    "LinearThompsonSampling",
    "Policy",
    "Reason",
    "ThompsonSampling",
]
