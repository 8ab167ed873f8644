"""Distances between two empirical CDFs (KS sup-norm, Wasserstein-1), from sorted samples.

Both statistics are functionals of ``F_ref(x) - F_cur(x)`` on the merged support: KS is its
largest absolute value over the data points (as :func:`scipy.stats.ks_2samp` evaluates it),
Wasserstein-1 its integral ``sum |F_ref - F_cur| * (x[k+1] - x[k])`` over the merged points
(as :func:`scipy.stats.wasserstein_distance` computes it, Ramdas et al. 2017, eq. 3).

scipy gets the merged points by sorting the concatenation again and the ECDFs by two binary
searches of every merged point. With both samples already sorted, the concatenation is two
sorted runs, which numpy's stable sort (timsort) merges in one linear pass; the merge order
says which sample each point came from, and running counts of those give both ECDFs at
every merged point. Ties are resolved as in a right-continuous ECDF (every point of a tie
takes the counts at its last), so the values match scipy's to rounding.

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
    both = np.concatenate((ref_sorted, cur_sorted))
    # Stable: a reference point goes before an equal current one. Any consistent order of
    # ties would do, since tied points share their ECDF values and sit zero apart.
    order = np.argsort(both, kind="stable")
    merged = both[order]
    # Reference and current points at or before each merged position... (in place where it
    # can be: at a million rows each temporary array costs as much as the arithmetic)
    ref_upto = np.cumsum(order < n)
    cur_upto = np.arange(1, n + m + 1)
    cur_upto -= ref_upto
    # ...and, where points tie, the counts at the last of the tie: #ref <= x and #cur <= x.
    last_of_tie = np.empty(n + m, dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=last_of_tie[:-1])
    last_of_tie[-1] = True
    if np.count_nonzero(last_of_tie) < n + m:
        ends = np.flatnonzero(last_of_tie)
        span = np.diff(ends, prepend=-1)
        ref_upto = np.repeat(ref_upto[ends], span)
        cur_upto = np.repeat(cur_upto[ends], span)
    gaps: FloatArray = ref_upto / n if ref_cum_weights is None else ref_cum_weights[ref_upto]
    gaps -= cur_upto / m
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
