"""Experiments: A/B statistics, bandits, replay evaluation and canary rollouts.

The bandit policies are importable from here in river's style (``pull`` and
``update``); the statistics live in :mod:`mlgate.experiments.stats` (pure functions)
and :mod:`mlgate.experiments.analysis` (the JSON document), canaries in
:mod:`mlgate.experiments.canary`. Only the light, pure parts load with this package.
"""

from __future__ import annotations

from mlgate.experiments.bandits import (
    UCB1,
    ContextEncoder,
    EpsilonGreedy,
    LinearThompsonSampling,
    LinUCB,
    ThompsonSampling,
)

__all__ = [
    "UCB1",
    "ContextEncoder",
    "EpsilonGreedy",
    "LinUCB",
    "LinearThompsonSampling",
    "ThompsonSampling",
]
