"""Is the candidate's improvement real? McNemar's exact test and a paired bootstrap.

Both compare the two models on the *same* holdout rows, which is what makes them far
more sensitive than comparing two independent accuracies: the rows both models get right
(or wrong) carry no information about which is better and drop out.

- McNemar (1947), exact form: among the rows exactly one model gets right, the count the
  candidate wins is Binomial(n_discordant, 1/2) if the models are equally good. "The
  improvement is real" is one-sided, so p = P(X >= candidate wins). Its two-sided form
  is what ``statsmodels.stats.contingency_tables.mcnemar(exact=True)`` reports.
- Paired bootstrap (Efron & Tibshirani 1993, ch. 13; percentile interval): resample row
  indices with replacement, score both models on each resample, and take percentiles of
  the difference. Pairing means the same indices serve both models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from mlgate.loop.gates._metrics import MetricUndefinedError, Scored

__all__ = ["BootstrapInterval", "McNemarResult", "mcnemar_one_sided", "paired_bootstrap"]

# Index matrices are drawn in chunks of about this many cells, bounding memory (8 MB of
# int64 per array) whatever the holdout's size.
_CHUNK_CELLS = 1_000_000


@dataclass(frozen=True)
class McNemarResult:
    """Discordant counts and the one-sided exact p-value in favour of the candidate."""

    candidate_wins: int  # rows only the candidate got right
    champion_wins: int  # rows only the champion got right
    p_value: float


def mcnemar_one_sided(
    candidate_correct: NDArray[np.bool_], champion_correct: NDArray[np.bool_]
) -> McNemarResult:
    """Exact one-sided McNemar test of "the candidate is more often right".

    With no discordant rows there is no evidence either way, so p is 1.
    """
    cand = np.asarray(candidate_correct, dtype=bool)
    champ = np.asarray(champion_correct, dtype=bool)
    wins = int(np.count_nonzero(cand & ~champ))
    losses = int(np.count_nonzero(~cand & champ))
    n = wins + losses
    p = 1.0 if n == 0 else float(stats.binomtest(wins, n, 0.5, alternative="greater").pvalue)
    return McNemarResult(candidate_wins=wins, champion_wins=losses, p_value=p)


@dataclass(frozen=True)
class BootstrapInterval:
    """Percentile interval of (candidate - champion), signed so that positive is better."""

    observed: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    n_undefined: int  # resamples on which the metric had no value (say, one class only)


def paired_bootstrap(
    candidate: Scored,
    champion: Scored,
    *,
    n_rows: int,
    higher_is_better: bool,
    n_resamples: int,
    confidence: float,
    rng: np.random.Generator,
) -> BootstrapInterval:
    """Percentile bootstrap interval of the paired difference in a metric.

    The difference is oriented so that positive always means "candidate better" (for a
    loss such as rmse, champion minus candidate). Resamples where the metric is undefined
    are counted and left out; if none is left, :class:`MetricUndefinedError`.
    """
    sign = 1.0 if higher_is_better else -1.0
    chunk = max(1, _CHUNK_CELLS // n_rows)
    diffs: list[NDArray[np.float64]] = []
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        idx = rng.integers(0, n_rows, size=(size, n_rows), dtype=np.intp)
        diffs.append(sign * (candidate.resample(idx) - champion.resample(idx)))
        done += size
    every = np.concatenate(diffs)
    finite = every[np.isfinite(every)]
    if len(finite) == 0:
        raise MetricUndefinedError(
            f"the metric is undefined on all {n_resamples} bootstrap resamples; "
            "the holdout is too small or too uniform for this metric"
        )
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return BootstrapInterval(
        observed=sign * (candidate.value - champion.value),
        low=float(low),
        high=float(high),
        confidence=confidence,
        n_resamples=n_resamples,
        n_undefined=int(len(every) - len(finite)),
    )
