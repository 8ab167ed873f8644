"""Canary analysis and progressive rollout: Kayenta-style judgement, persisted steps.

- :mod:`.judge`: pure statistics: Mann-Whitney per metric, the score, the verdict;
- :mod:`.samples`: each version's samples from the prediction log and feedback;
- :mod:`.config`: a canary's settings;
- :mod:`.status`: a canary as stored, and what a tick did;
- :mod:`.transitions`: what a verdict does to a canary, and the ledger kinds;
- :mod:`.rollout`: the endpoint specs a canary deploys;
- :mod:`.controller`: starts, judges, steps, promotes, rolls back, safely across processes.
"""

from __future__ import annotations

from mlgate.experiments.canary.config import CanaryConfig
from mlgate.experiments.canary.controller import SERVICE_ACTOR, CanaryController
from mlgate.experiments.canary.judge import (
    DEFAULT_METRICS,
    JudgeConfig,
    Judgement,
    MetricResult,
    MetricSpec,
    Observations,
    judge,
)
from mlgate.experiments.canary.status import (
    ACTIVE_STATES,
    CanaryDecision,
    CanaryState,
    CanaryStatus,
)

__all__ = [
    "ACTIVE_STATES",
    "DEFAULT_METRICS",
    "SERVICE_ACTOR",
    "CanaryConfig",
    "CanaryController",
    "CanaryDecision",
    "CanaryState",
    "CanaryStatus",
    "JudgeConfig",
    "Judgement",
    "MetricResult",
    "MetricSpec",
    "Observations",
    "judge",
]
