"""Distances between two empirical CDFs (KS sup-norm, Wasserstein-1), from sorted samples.

Both statistics are functionals of ``F_ref(x) - F_cur(x)`` on the merged support: KS is its
largest absolute value over the data points (as :func:`scipy.stats.ks_2samp` evaluates it),
Wasserstein-1 its integral ``sum |F_ref - F_cur| * (x[k+1] - x[k])`` over the merged points
(as :func:`scipy.stats.wasserstein_distance` computes it, Ramdas et al. 2017, eq. 3).

scipy gets the merged points by sorting the concatenation again and the ECDFs by two binary
searches of every merged point. With both samples already sorted, one binary search of the
reference points in the current sample is enough: it gives each reference point's place in
the merge, and a histogram of those places gives each current point's place. Ties are
resolved as in a right-continuous ECDF, so the values match scipy's to rounding.

The reference may be a weighted sample (``cum_weights``): a reference profile keeps a
quantile grid instead of the data, each grid point standing for a share of the rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ecdf_gaps",
    "finite_part",
    "ks_from_gaps",
    "normalise",
    "right_ranks",
    "std_finite",
    "strip_nan",
    "w1_from_gaps",
]

FloatArray = NDArray[np.float64]


def strip_nan(values_sorted: NDArray[Any]) -> FloatArray:
    """The non-NaN prefix of a sorted float array (numpy sorts NaN last)."""
    x = np.asarray(values_sorted, dtype=np.float64)
    if x.size == 0 or not np.isnan(x[-1]):
        return x
    return x[: int(np.searchsorted(x, np.nan, side="left"))]


def finite_part(values_sorted: FloatArray) -> FloatArray:
    """The finite slice of a sorted, NaN-free array: infinities sit at both ends."""
    lo = int(np.searchsorted(values_sorted, -np.inf, side="right"))
    hi = int(np.searchsorted(values_sorted, np.inf, side="left"))
    return values_sorted[lo:hi]


def right_ranks(values_sorted: FloatArray) -> NDArray[np.int64]:
    """For each point of a sorted array, how many points are <= it (ties share the count)."""
    n = values_sorted.size
    last_of_tie = np.empty(n, dtype=bool)
    if n:
        np.not_equal(values_sorted[1:], values_sorted[:-1], out=last_of_tie[:-1])
        last_of_tie[-1] = True
    ends = np.flatnonzero(last_of_tie) + 1
    if ends.size == n:
        return ends  # no ties: 1, 2, ..., n
    return np.repeat(ends, np.diff(ends, prepend=0))


def ecdf_gaps(
    ref_sorted: FloatArray,
    cur_sorted: FloatArray,
    ref_cum_weights: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Return ``(merged, gaps)``: the merged points and ``F_ref - F_cur`` at each of them.

    Both inputs sorted, NaN-free and non-empty. ``ref_cum_weights`` (length ``n_ref + 1``,
    from 0 to 1) weights the reference points; None means equal weights.
    """
    n, m = ref_sorted.size, cur_sorted.size
    # How many current points lie strictly below each reference point...
    cur_below_ref = np.searchsorted(cur_sorted, ref_sorted, side="left")
    # ...and, by counting those, how many reference points lie at or below each current one:
    # ref[i] <= cur[j]  <=>  (#cur < ref[i]) <= j.
    ref_upto_cur = np.cumsum(np.bincount(cur_below_ref, minlength=m + 1))[:m]

    ref_rank = right_ranks(ref_sorted)
    cur_rank = right_ranks(cur_sorted)
    # #cur <= ref[i]: the strict count, plus the current points tied with ref[i].
    probe = np.minimum(cur_below_ref, m - 1)
    tied = (cur_below_ref < m) & (cur_sorted[probe] == ref_sorted)
    cur_upto_ref = np.where(tied, cur_rank[probe], cur_below_ref)

    if ref_cum_weights is None:
        f_ref_at_ref = ref_rank / n
        f_ref_at_cur = ref_upto_cur / n
    else:
        f_ref_at_ref = ref_cum_weights[ref_rank]
        f_ref_at_cur = ref_cum_weights[ref_upto_cur]

    merged = np.empty(n + m, dtype=np.float64)
    gaps = np.empty(n + m, dtype=np.float64)
    # Reference points go before equal current points; any consistent order of ties works
    # because tied points share their ECDF values and sit zero apart.
    at_ref = np.arange(n) + cur_below_ref
    at_cur = np.arange(m) + ref_upto_cur
    merged[at_ref] = ref_sorted
    merged[at_cur] = cur_sorted
    gaps[at_ref] = f_ref_at_ref - cur_upto_ref / m
    gaps[at_cur] = f_ref_at_cur - cur_rank / m
    return merged, gaps


def ks_from_gaps(gaps: FloatArray) -> float:
    return float(np.max(np.abs(gaps)))


def w1_from_gaps(merged: FloatArray, gaps: FloatArray) -> float:
    """Integral of ``|F_ref - F_cur|`` over the merged points (all finite)."""
    if merged.size < 2:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        spacing = np.diff(merged)  # overflows to inf only for values beyond +-9e307
        size = np.abs(gaps[:-1])
        w1 = float(np.dot(size, spacing))
        if math.isnan(w1):  # a zero gap times an infinite spacing: that piece adds nothing
            live = size > 0
            w1 = float(np.dot(size[live], spacing[live]))
    return w1


def normalise(w1: float, scale: float) -> float:
    if scale > 0:
        return w1 / scale
    return 0.0 if w1 == 0 else math.inf


def std_finite(finite: FloatArray) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.std(finite))
    return value if math.isfinite(value) else math.inf
