"""Drift statistics: pure functions over sorted samples and bin counts.

Each statistic is checked against scipy in ``tests/monitoring/test_stats.py``.

- Bins come from the reference's quantiles (:func:`quantile_edges`): left-closed
  ``[e_i, e_{i+1})`` with open-ended outer bins, so values beyond the reference's range,
  infinities included, land in the outer bins. NaN is never counted.
- PSI, KL and the PSI p-value smooth every bin with :data:`PSI_PSEUDO_COUNT` (0.5, the
  Jeffreys / Krichevsky-Trofimov pseudo-count) instead of replacing empty shares with a fixed
  epsilon: with a fixed 1e-4 an empty bin alone adds ~0.7 to the PSI of a 10-bin, 50-row
  window, which is why a fixed "PSI >= 0.1" fires on almost every small drift-free window.
  With the pseudo-count the PSI stays finite and its null distribution stays close to
  ``(1/n_ref + 1/n_cur) * chi2(bins - 1)`` (Yurdakul & Naranjo 2020, "Statistical properties
  of the population stability index", J. Risk Model Validation 14(4)), which
  :func:`psi_threshold` and :func:`psi_p_value` use to make the PSI sample-size aware.
- Jensen-Shannon distance is unsmoothed and in base 2, so it lies in [0, 1]; like the PSI
  it grows as windows shrink, and :func:`js_threshold` gives its noise level.
- The chi-square test is the two-sample test of homogeneity on the 2 x K table
  (reference and current counts, no Yates correction), not the one-sample goodness-of-fit
  that treats the reference's shares as exact: that one flags ~47% of drift-free columns.
  Its p-value is chi-square's limit, valid only with ~5 expected per cell (Cochran's rule):
  :func:`pool_sparse` merges sparser cells first (the drift verdict does so for
  categorical features, whose many rare categories otherwise gave p-values of 1e-11 on
  drift-free windows; quantile bins hold ~n/B each and are left as they are).
- KS and Wasserstein come from one pass over the two sorted samples (:mod:`._ecdf`), or,
  for large unsorted windows, from bucket counts with only the few buckets where order
  matters sorted (:mod:`._bucketed`, same values to rounding, a third of the time); the
  KS p-value is scipy's ``method="auto"`` (:mod:`._ks`). KS sees infinities as values beyond
  every finite one; Wasserstein, which any infinity would make infinite, uses the finite
  values only and is divided by the reference's standard deviation (ddof=0, as Evidently
  does), so 0.5 means "moved by half a reference sigma".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mlgate.errors import DataError
from mlgate.monitoring.stats._binned import (
    DEFAULT_BINS,
    MIN_EXPECTED,
    PSI_PSEUDO_COUNT,
    Chi2Result,
    PooledCounts,
    bin_counts,
    chi2_two_sample,
    js_distance,
    js_threshold,
    kl_divergence,
    pool_sparse,
    pooling_note,
    psi,
    psi_p_value,
    psi_threshold,
    quantile_edges,
)
from mlgate.monitoring.stats._bucketed import bucketed_parts
from mlgate.monitoring.stats._ecdf import (
    ecdf_gaps,
    finite_part,
    ks_from_gaps,
    normalise,
    std_finite,
    strip_nan,
    w1_from_gaps,
)
from mlgate.monitoring.stats._grid import (
    GRID_SIZE,
    grid_cum_weights,
    grid_errors,
    mix_infinities,
    quantile_grid,
)
from mlgate.monitoring.stats._ks import ks_p_value

__all__ = [
    "DEFAULT_BINS",
    "GRID_SIZE",
    "MIN_EXPECTED",
    "PSI_PSEUDO_COUNT",
    "Chi2Result",
    "Correction",
    "KSResult",
    "NumericDrift",
    "PooledCounts",
    "adjust_p_values",
    "benjamini_hochberg",
    "bin_counts",
    "chi2_two_sample",
    "grid_cum_weights",
    "grid_errors",
    "js_distance",
    "js_threshold",
    "kl_divergence",
    "ks_2samp",
    "numeric_drift",
    "numeric_drift_from_grid",
    "numeric_drift_unsorted",
    "pool_sparse",
    "pooling_note",
    "psi",
    "psi_p_value",
    "psi_threshold",
    "quantile_edges",
    "quantile_grid",
    "wasserstein_normalised",
]


Correction = Literal["bh", "bonferroni", "none"]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class KSResult:
    statistic: float
    p_value: float
    method: Literal["exact", "asymp"]


@dataclass(frozen=True, slots=True, eq=False)
class NumericDrift:
    """Every statistic of one numeric feature, from one sort of each window.

    ``n_ref``/``n_cur`` count non-missing values (infinities included), the sizes the KS
    and PSI tests use. ``wasserstein`` is NaN only when a window has no finite value.
    """

    psi: float
    kl: float
    js: float
    ks: KSResult
    wasserstein: float
    chi2: Chi2Result
    n_ref: int
    n_cur: int
    edges: FloatArray
    ref_counts: IntArray
    cur_counts: IntArray


def adjust_p_values(p_values: Sequence[float] | FloatArray, method: Correction) -> FloatArray:
    """Multiple-testing adjusted p-values: Benjamini-Hochberg (1995) step-up, Bonferroni, none.

    BH's adjusted value of the i-th smallest of m p-values is ``min_{j>=i} m p_(j) / j``;
    rejecting where it is <= alpha controls the false-discovery rate at alpha, and under the
    global null (no feature drifted) the chance of any rejection too.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.size and (np.any(np.isnan(p)) or np.any((p < 0) | (p > 1))):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    if method == "none" or p.size == 0:
        return p.copy()
    m = p.size
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    if method != "bh":
        raise ValueError(f"unknown correction {method!r}; use 'bh', 'bonferroni' or 'none'")
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def benjamini_hochberg(p_values: Sequence[float] | FloatArray, alpha: float) -> NDArray[np.bool_]:
    """Which hypotheses the Benjamini-Hochberg procedure rejects at false-discovery rate alpha."""
    return adjust_p_values(p_values, "bh") <= alpha


def _non_empty_finite(values_sorted: ArrayLike, window: str) -> FloatArray:
    x = strip_nan(np.asarray(values_sorted, dtype=np.float64))
    if x.size == 0:
        raise DataError(f"the {window} window has no non-missing values to compare")
    return x


def ks_2samp(ref_sorted: ArrayLike, cur_sorted: ArrayLike) -> KSResult:
    """Two-sided two-sample KS test of two sorted samples (NaN skipped).

    Agrees with ``scipy.stats.ks_2samp(ref, cur, method="auto")``: exact p-values up to
    10,000 values per sample, Smirnov's asymptotic form above (see :mod:`._ks`).
    """
    ref = _non_empty_finite(ref_sorted, "reference")
    cur = _non_empty_finite(cur_sorted, "current")
    _, gaps = ecdf_gaps(ref, cur)
    d, p, method = ks_p_value(ks_from_gaps(gaps), ref.size, cur.size)
    return KSResult(d, p, method)


def wasserstein_normalised(
    ref_sorted: ArrayLike, cur_sorted: ArrayLike, scale: float | None = None
) -> float:
    """Wasserstein-1 distance of the finite values, divided by the reference's std (ddof=0).

    ``scale`` overrides the divisor. A constant reference (scale 0) gives 0 when the current
    window sits on the same constant and ``inf`` otherwise; a window without finite values
    gives NaN, which the drift report shows as null with its reason.
    """
    ref = finite_part(strip_nan(np.asarray(ref_sorted, dtype=np.float64)))
    cur = finite_part(strip_nan(np.asarray(cur_sorted, dtype=np.float64)))
    if ref.size == 0 or cur.size == 0:
        return math.nan
    merged, gaps = ecdf_gaps(ref, cur)
    return normalise(w1_from_gaps(merged, gaps), std_finite(ref) if scale is None else scale)


def _assemble(
    d: float,
    n_ref: int,
    n_cur: int,
    w1: float,
    scale: float,
    edges: FloatArray,
    ref_counts: IntArray,
    cur_counts: IntArray,
) -> NumericDrift:
    d, p, method = ks_p_value(d, n_ref, n_cur)
    return NumericDrift(
        psi=psi(ref_counts, cur_counts),
        kl=kl_divergence(ref_counts, cur_counts),
        js=js_distance(ref_counts, cur_counts),
        ks=KSResult(d, p, method),
        wasserstein=math.nan if math.isnan(w1) else normalise(w1, scale),
        chi2=chi2_two_sample(ref_counts, cur_counts),
        n_ref=n_ref,
        n_cur=n_cur,
        edges=edges,
        ref_counts=ref_counts,
        cur_counts=cur_counts,
    )


def _drift_core(
    *,
    ks_ref: FloatArray,
    ks_ref_cum: FloatArray | None,
    w_ref: FloatArray,
    w_ref_cum: FloatArray | None,
    n_ref: int,
    scale: float,
    edges: FloatArray,
    ref_counts: IntArray,
    cur: FloatArray,
) -> NumericDrift:
    cur_finite = finite_part(cur)
    merged, gaps = ecdf_gaps(ks_ref, cur, ks_ref_cum)
    d = ks_from_gaps(gaps)
    if w_ref.size == 0 or cur_finite.size == 0:
        w1 = math.nan
    elif w_ref is ks_ref and cur_finite.size == cur.size:
        w1 = w1_from_gaps(merged, gaps)  # no infinities: the KS pass already has it
    else:
        w1 = w1_from_gaps(*ecdf_gaps(w_ref, cur_finite, w_ref_cum))
    cur_counts = bin_counts(cur, edges, is_sorted=True)
    return _assemble(d, n_ref, int(cur.size), w1, scale, edges, ref_counts, cur_counts)


def numeric_drift(
    ref_sorted: ArrayLike, cur_sorted: ArrayLike, bins: int = DEFAULT_BINS
) -> NumericDrift:
    """All numeric statistics of two sorted windows (NaN skipped), exactly.

    One binary search of the reference in the current window yields both ECDFs on the
    merged support (KS and Wasserstein), and one binary search per edge the bin counts
    (PSI, KL, JS, chi-square). Both windows need at least one non-missing value.
    """
    ref = _non_empty_finite(ref_sorted, "reference")
    cur = _non_empty_finite(cur_sorted, "current")
    ref_finite = finite_part(ref)
    edges = quantile_edges(ref, bins)
    return _drift_core(
        ks_ref=ref,
        ks_ref_cum=None,
        w_ref=ref if ref_finite.size == ref.size else ref_finite,
        w_ref_cum=None,
        n_ref=int(ref.size),
        scale=std_finite(ref_finite) if ref_finite.size else 0.0,
        edges=edges,
        ref_counts=bin_counts(ref, edges, is_sorted=True),
        cur=cur,
    )


def numeric_drift_unsorted(
    ref: FloatArray, cur: FloatArray, bins: int = DEFAULT_BINS
) -> NumericDrift | None:
    """:func:`numeric_drift` of two unsorted, NaN-free windows, or None where it cannot help.

    Same statistics to rounding (~1e-15 relative), in about a third of the time at a million
    rows (:mod:`._bucketed`). None for windows with infinities or a reference with at most
    ``bins`` distinct values: sort them and call :func:`numeric_drift`.
    """
    parts = bucketed_parts(
        np.asarray(ref, dtype=np.float64), np.asarray(cur, dtype=np.float64), bins
    )
    if parts is None:
        return None
    return _assemble(
        parts.ks_statistic,
        parts.n_ref,
        parts.n_cur,
        parts.w1,
        parts.scale,
        parts.edges,
        parts.ref_counts,
        parts.cur_counts,
    )


def numeric_drift_from_grid(
    *,
    grid: FloatArray,
    grid_is_sample: bool,
    n_neg_inf: int,
    n_finite: int,
    n_pos_inf: int,
    scale: float,
    edges: FloatArray,
    ref_counts: IntArray,
    cur_sorted: ArrayLike,
) -> NumericDrift:
    """:func:`numeric_drift` against a stored reference: bins exact, KS and W via the grid.

    The KS statistic and the Wasserstein distance are those of the weighted grid, which by
    the triangle inequality differ from the exact ones by at most the grid's own KS and W
    distance to the reference (the profile records both when it is fitted).
    """
    cur = _non_empty_finite(cur_sorted, "current")
    n_ref = n_neg_inf + n_finite + n_pos_inf
    if n_ref <= 0:
        raise DataError("the reference window has no non-missing values to compare")
    cum = grid_cum_weights(grid.size, grid_is_sample)
    ks_ref, ks_cum = mix_infinities(grid, cum, n_neg_inf, n_finite, n_pos_inf)
    return _drift_core(
        ks_ref=ks_ref,
        ks_ref_cum=ks_cum,
        w_ref=grid,
        w_ref_cum=cum,
        n_ref=n_ref,
        scale=scale,
        edges=edges,
        ref_counts=ref_counts,
        cur=cur,
    )
