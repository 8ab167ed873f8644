"""Small statistics behind the data-quality checks: rate spikes, robust scale, duplicates.

Rate spike
    Most quality checks count bad rows (out of range, missing, unseen, outliers,
    duplicates, suspect labels) and ask whether their share rose above what the
    reference showed. A fixed cut ("more than 1%") fires on every small batch by
    chance and misses a real rise on a big one, so the test is a one-sided
    binomial test of ``H0: rate <= base_rate + tolerance``: the batch fails when
    its count exceeds the ``1 - alpha`` binomial quantile under that rate. The
    tolerance is the effect size a person cares about; the quantile is the
    sample-size allowance. ``threshold`` reported to users is that quantile as a
    share of the batch. The base rate is itself estimated from ``base_n`` reference
    values, so its one-sided 95% Clopper-Pearson upper bound stands in for it: with
    a small reference a rate seen as 0 of 200 may well be 1%, and clean batches
    must not fail for that.

Robust scale
    Robust z-scores use ``1.4826 * MAD`` (consistent for the normal sigma) and
    flag ``|z| > 3.5`` as recommended by Iglewicz & Hoaglin (1993), "How to Detect
    and Handle Outliers". When more than half the values are equal the MAD is 0;
    then the IQR/1.349 and then the mean absolute deviation from the median times
    1.2533 (its normal consistency constant) are used; a constant column has scale
    0 and any value other than the median is an outlier.

Duplicate base rate
    The share of repeated rows grows with sample size for discrete data (the
    birthday effect), so a single reference share cannot be compared with batches
    of other sizes. The reference's duplicate share is measured on prefixes of a
    few random orderings at log-spaced sizes, giving a curve the check
    interpolates (in log size) at the batch's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "RateTest",
    "base_rate_bound",
    "duplicate_curve",
    "duplicate_share_at",
    "outlier_mask",
    "rate_spike",
    "robust_scale",
]

MAD_TO_SIGMA = 1.4826
IQR_TO_SIGMA = 1.349
MEANAD_TO_SIGMA = 1.2533


BASE_RATE_CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class RateTest:
    """Outcome of :func:`rate_spike`: share seen, base rate used, critical share, p-value."""

    observed: float
    base: float
    threshold: float
    p_value: float
    fired: bool


def base_rate_bound(rate: float, n: int) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen as ``rate`` in ``n`` values."""
    if n <= 0:
        return 1.0
    k = min(n, max(0, round(rate * n)))
    if k >= n:
        return 1.0
    return float(stats.beta.ppf(BASE_RATE_CONFIDENCE, k + 1, n - k))


def rate_spike(
    count: int,
    n: int,
    base_rate: float,
    tolerance: float,
    alpha: float,
    *,
    base_n: int | None = None,
) -> RateTest:
    """One-sided binomial test of ``H0: rate <= base + tolerance`` (see module doc).

    ``base`` is ``base_rate``, or its upper bound when ``base_n`` (the number of
    reference values it was measured on) is given.
    """
    base = base_rate if base_n is None else base_rate_bound(base_rate, base_n)
    observed = count / n if n > 0 else 0.0
    p0 = min(1.0, max(0.0, base) + tolerance)
    if n <= 0 or p0 >= 1.0:
        return RateTest(observed=observed, base=base, threshold=1.0, p_value=1.0, fired=False)
    critical = int(stats.binom.isf(alpha, n, p0))
    p_value = float(stats.binom.sf(count - 1, n, p0)) if count > 0 else 1.0
    return RateTest(
        observed=observed,
        base=base,
        threshold=critical / n,
        p_value=p_value,
        fired=count > critical,
    )


def robust_scale(finite_sorted: npt.NDArray[np.float64], median: float) -> tuple[float, str]:
    """Return ``(sigma estimate, method)`` for robust z-scores (see module doc)."""
    deviations = np.abs(finite_sorted - median)
    mad = float(np.median(deviations))
    if mad > 0:
        return MAD_TO_SIGMA * mad, "mad"
    q1, q3 = np.quantile(finite_sorted, [0.25, 0.75])
    if q3 > q1:
        return float(q3 - q1) / IQR_TO_SIGMA, "iqr"
    mean_ad = float(np.mean(deviations))
    if mean_ad > 0:
        return MEANAD_TO_SIGMA * mean_ad, "meanad"
    return 0.0, "constant"


def outlier_mask(
    values: npt.NDArray[np.float64], median: float, scale: float, z: float
) -> npt.NDArray[np.bool_]:
    """Rows whose robust z-score exceeds ``z``; with scale 0, rows not equal to the median."""
    if scale > 0:
        return np.asarray(np.abs(values - median) > z * scale)
    return np.asarray(values != median)


def duplicate_curve(
    group_ids: npt.NDArray[np.int64], rng: np.random.Generator, orderings: int = 5
) -> tuple[tuple[int, float], ...]:
    """Mean duplicate share of the first ``m`` rows of random orderings, at log-spaced ``m``.

    ``group_ids`` are dense codes ``0..G-1`` (equal rows, equal code).
    A row counts as a duplicate when an equal row came before it, so the share of
    a prefix is a cumulative sum: every size costs nothing once the order is drawn.
    """
    n = group_ids.shape[0]
    if n == 0:
        return ()
    sizes = np.unique(np.round(np.geomspace(1, n, num=min(n, 25))).astype(np.int64))
    totals = np.zeros(sizes.shape[0], dtype=np.float64)
    n_groups = int(group_ids.max()) + 1
    for _ in range(orderings):
        rank = rng.permutation(n)  # row i comes rank[i]-th in this ordering
        first = np.full(n_groups, n, dtype=np.int64)
        np.minimum.at(first, group_ids, rank)
        is_dup = np.ones(n, dtype=np.int64)
        is_dup[first] = 0  # indexed by rank: the first-ranked row of each group
        totals += np.cumsum(is_dup)[sizes - 1] / sizes
    shares = totals / orderings
    return tuple((int(m), float(s)) for m, s in zip(sizes, shares, strict=True))


def duplicate_share_at(curve: tuple[tuple[int, float], ...], n: int) -> float:
    """Expected duplicate share of ``n`` rows, interpolated in log size on ``curve``.

    Beyond the reference size the last segment's slope is continued (the share keeps
    growing for discrete data), never below the last measured value, never above 1.
    """
    if not curve or n <= 1:
        return 0.0
    sizes = np.log(np.array([m for m, _ in curve], dtype=np.float64))
    shares = np.array([s for _, s in curve], dtype=np.float64)
    x = math.log(n)
    if x <= sizes[-1] or sizes.shape[0] < 2:
        return float(np.interp(x, sizes, shares))
    span = sizes[-1] - sizes[-2]
    slope = (shares[-1] - shares[-2]) / span if span > 0 else 0.0
    return float(min(1.0, max(shares[-1], shares[-1] + slope * (x - sizes[-1]))))
