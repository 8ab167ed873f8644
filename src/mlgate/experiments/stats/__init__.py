"""A/B statistics from per-variant summaries: pure functions over counts and sums.

Every function here takes sufficient statistics (``n``, sums, sums of squares), never raw
rows, and is checked against scipy and statsmodels in ``tests/experiments/test_stats_*.py``.

- summaries and their moments: :mod:`._summaries` (means, proportions, delta-method ratios);
- fixed-horizon tests: Welch's t, the two-proportion z-test, with absolute and relative
  (delta-method) lifts (:mod:`._fixed`, :mod:`._lift`);
- always-valid sequential tests: the normal-mixture mSPRT and its confidence sequences
  (:mod:`._sequential`);
- Bayesian summaries: chance to beat control, expected loss, credible intervals
  (:mod:`._bayesian`, :mod:`._beta`);
- CUPED variance reduction (:mod:`._cuped`), the sample-ratio-mismatch check
  (:mod:`._srm`), guardrails (:mod:`._guardrail`), power and sample size (:mod:`._power`);
- :func:`analyze`, which runs them in order for a whole experiment (:mod:`._analyze`),
  and its strict-JSON form (:mod:`._json`).

Bad input raises :class:`mlgate.errors.ExperimentInputError` saying what to send instead;
too little data is an answer (``"not_enough_data"``), not an error.
"""

from __future__ import annotations

from mlgate.experiments.stats._analyze import (
    Analysis,
    Difference,
    Guardrail,
    Kind,
    Method,
    VariantResult,
    Verdict,
    analyze,
)
from mlgate.experiments.stats._bayesian import (
    DEFAULT_DRAWS,
    BayesianSummary,
    beta_binomial_summary,
    normal_summary,
)
from mlgate.experiments.stats._beta import beta_chance_to_beat, beta_expected_loss
from mlgate.experiments.stats._cuped import CupedAdjustment, cuped
from mlgate.experiments.stats._fixed import (
    FixedHorizonTest,
    two_proportion_z_test,
    welch_t_test,
    z_test,
)
from mlgate.experiments.stats._guardrail import GuardrailTest, Harm, guardrail_test
from mlgate.experiments.stats._lift import RELATIVE_MIN_Z, Estimate
from mlgate.experiments.stats._power import (
    power_mean,
    power_proportion,
    sample_size_mean,
    sample_size_proportion,
)
from mlgate.experiments.stats._sequential import (
    DEFAULT_MIXING_SD,
    SequentialTest,
    confidence_radius,
    mixture_likelihood_ratio,
    msprt,
)
from mlgate.experiments.stats._srm import DEFAULT_SRM_THRESHOLD, SRMCheck, check_weights, srm_check
from mlgate.experiments.stats._summaries import (
    CovariateSummary,
    MeanSummary,
    Moments,
    ProportionSummary,
    RatioSummary,
    Summary,
)

__all__ = [
    "DEFAULT_DRAWS",
    "DEFAULT_MIXING_SD",
    "DEFAULT_SRM_THRESHOLD",
    "RELATIVE_MIN_Z",
    "Analysis",
    "BayesianSummary",
    "CovariateSummary",
    "CupedAdjustment",
    "Difference",
    "Estimate",
    "FixedHorizonTest",
    "Guardrail",
    "GuardrailTest",
    "Harm",
    "Kind",
    "MeanSummary",
    "Method",
    "Moments",
    "ProportionSummary",
    "RatioSummary",
    "SRMCheck",
    "SequentialTest",
    "Summary",
    "VariantResult",
    "Verdict",
    "analyze",
    "beta_binomial_summary",
    "beta_chance_to_beat",
    "beta_expected_loss",
    "check_weights",
    "confidence_radius",
    "cuped",
    "guardrail_test",
    "mixture_likelihood_ratio",
    "msprt",
    "normal_summary",
    "power_mean",
    "power_proportion",
    "sample_size_mean",
    "sample_size_proportion",
    "srm_check",
    "two_proportion_z_test",
    "welch_t_test",
    "z_test",
]
