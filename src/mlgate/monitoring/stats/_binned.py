"""Binned drift statistics: quantile bins, PSI, KL, Jensen-Shannon and the chi-square test.

Re-exported by :mod:`mlgate.monitoring.stats`, whose docstring explains the choices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from mlgate.errors import DataError
from mlgate.monitoring.stats._ecdf import strip_nan

__all__ = [
    "DEFAULT_BINS",
    "PSI_PSEUDO_COUNT",
    "Chi2Result",
    "bin_counts",
    "chi2_two_sample",
    "js_distance",
    "kl_divergence",
    "psi",
    "psi_p_value",
    "psi_threshold",
    "quantile_edges",
]

DEFAULT_BINS = 10
PSI_PSEUDO_COUNT = 0.5
"""Added to every bin's count before PSI and KL take shares (Jeffreys prior)."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Chi2Result:
    statistic: float
    p_value: float
    dof: int


def quantile_edges(reference_sorted: ArrayLike, bins: int = DEFAULT_BINS) -> FloatArray:
    """Interior bin edges at the reference's ``k/bins`` quantiles, deduplicated.

    Edges are reference values (the inverted-CDF quantile), so with left-closed bins no
    reference bin is empty. A reference with at most ``bins`` distinct values gets one bin
    per value. A constant reference ``c`` gets edges ``[c, next float above c]``: bins below,
    at and above the constant, so a current window that leaves the constant shows in PSI.
    Infinite quantiles are dropped (infinities belong to the outer bins).
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    x = strip_nan(np.asarray(reference_sorted, dtype=np.float64))
    if x.size == 0:
        return np.empty(0, dtype=np.float64)
    steps = x[1:] != x[:-1]
    n_changes = int(np.count_nonzero(steps))  # not flatnonzero: a million indices, mostly unused
    if n_changes == 0:
        c = float(x[0])
        edges = np.array([c, np.nextafter(c, np.inf)])
    elif n_changes + 1 <= bins:
        edges = x[np.flatnonzero(steps) + 1]
    else:
        k = np.arange(1, bins, dtype=np.int64)
        positions = (x.size * k + bins - 1) // bins - 1  # ceil(n k / bins) - 1
        edges = np.unique(x[positions])
        edges = edges[edges > x[0]]
    return np.ascontiguousarray(edges[np.isfinite(edges)], dtype=np.float64)


def bin_counts(values: ArrayLike, edges: ArrayLike, *, is_sorted: bool = False) -> IntArray:
    """Counts in ``len(edges) + 1`` bins ``(-inf, e1), [e1, e2), ..., [ek, inf]``; NaN skipped.

    With ``is_sorted`` the counts take one binary search per edge instead of one per value.
    """
    e = np.asarray(edges, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if is_sorted:
        v = strip_nan(v)
        cuts = np.searchsorted(v, e, side="left")
        return np.diff(np.concatenate(([0], cuts, [v.size]))).astype(np.int64)
    v = v[~np.isnan(v)]
    return np.bincount(np.searchsorted(e, v, side="right"), minlength=e.size + 1).astype(np.int64)


def _chi2_sf(statistic: float, dof: int) -> float:
    """``scipy.stats.chi2.sf(statistic, dof)``, to the bit, without importing scipy.stats.

    ``chi2.sf`` is ``special.chdtrc(dof, x)`` behind argument checks that the callers here
    have already made; scipy.stats costs half a second to import, scipy.special a fraction.
    """
    return float(special.chdtrc(dof, statistic))


def _chi2_ppf(q: float, dof: int) -> float:
    """``scipy.stats.chi2.ppf(q, dof)`` to the bit: scipy computes it as below."""
    return float(2 * special.gammaincinv(dof / 2, q))


def _shares(counts: ArrayLike, pseudo_count: float, window: str) -> FloatArray:
    c = np.asarray(counts, dtype=np.float64)
    total = float(c.sum())
    if total <= 0:
        raise DataError(
            f"the {window} window has no values to compare; expected at least one counted "
            "value, found none; skip empty windows or report them as empty"
        )
    if pseudo_count <= 0:
        return c / total
    return (c + pseudo_count) / (total + pseudo_count * c.size)


def _check_pair(ref_counts: ArrayLike, cur_counts: ArrayLike) -> None:
    if np.shape(ref_counts) != np.shape(cur_counts):
        raise ValueError(
            f"reference and current counts must have the same bins, "
            f"got shapes {np.shape(ref_counts)} and {np.shape(cur_counts)}"
        )


def psi(
    ref_counts: ArrayLike, cur_counts: ArrayLike, pseudo_count: float = PSI_PSEUDO_COUNT
) -> float:
    """Population stability index ``sum (q - p) ln(q / p)`` over smoothed shares (>= 0)."""
    if pseudo_count <= 0:
        raise ValueError("PSI needs a positive pseudo_count: an empty bin makes it infinite")
    _check_pair(ref_counts, cur_counts)
    p = _shares(ref_counts, pseudo_count, "reference")
    q = _shares(cur_counts, pseudo_count, "current")
    return float(max(np.sum((q - p) * np.log(q / p)), 0.0))


def kl_divergence(
    ref_counts: ArrayLike, cur_counts: ArrayLike, pseudo_count: float = PSI_PSEUDO_COUNT
) -> float:
    """``KL(reference || current)`` in nats over smoothed shares (Evidently's direction)."""
    if pseudo_count <= 0:
        raise ValueError("KL needs a positive pseudo_count: an empty bin makes it infinite")
    _check_pair(ref_counts, cur_counts)
    p = _shares(ref_counts, pseudo_count, "reference")
    q = _shares(cur_counts, pseudo_count, "current")
    return float(max(np.sum(p * np.log(p / q)), 0.0))


def js_distance(ref_counts: ArrayLike, cur_counts: ArrayLike) -> float:
    """Jensen-Shannon distance, base 2 (so in [0, 1]), of the raw shares.

    Equals ``scipy.spatial.distance.jensenshannon(ref, cur, base=2)``; an empty bin needs no
    smoothing here because the mixture ``(p + q) / 2`` is positive wherever p or q is.
    """
    _check_pair(ref_counts, cur_counts)
    p = _shares(ref_counts, 0.0, "reference")
    q = _shares(cur_counts, 0.0, "current")
    m = (p + q) / 2.0
    js = float(np.sum(special.rel_entr(p, m) + special.rel_entr(q, m))) / math.log(2.0)
    return min(math.sqrt(max(js / 2.0, 0.0)), 1.0)


def chi2_two_sample(ref_counts: ArrayLike, cur_counts: ArrayLike) -> Chi2Result:
    """Pearson's chi-square test of homogeneity on the 2 x K table of counts.

    Equals ``scipy.stats.chi2_contingency([ref, cur], correction=False)`` after dropping
    categories empty in both windows. Both rows are samples, so the test holds its level for
    any ratio of window sizes. A table with fewer than two live categories has nothing to
    test: statistic 0, p-value 1, dof 0.
    """
    _check_pair(ref_counts, cur_counts)
    r = np.asarray(ref_counts, dtype=np.float64).ravel()
    c = np.asarray(cur_counts, dtype=np.float64).ravel()
    live = (r + c) > 0
    r, c = r[live], c[live]
    ref_total, cur_total = float(r.sum()), float(c.sum())
    if ref_total <= 0 or cur_total <= 0:
        window = "reference" if ref_total <= 0 else "current"
        raise DataError(
            f"the chi-square test needs counts in both windows; the {window} window has none"
        )
    if r.size < 2:
        return Chi2Result(0.0, 1.0, 0)
    total = ref_total + cur_total
    column = r + c
    expected_ref = column * ref_total / total
    expected_cur = column * cur_total / total
    statistic = float(
        np.sum((r - expected_ref) ** 2 / expected_ref)
        + np.sum((c - expected_cur) ** 2 / expected_cur)
    )
    dof = int(r.size - 1)
    return Chi2Result(statistic, _chi2_sf(statistic, dof), dof)


def psi_threshold(
    n_ref: int, n_cur: int, n_bins: int, base: float = 0.1, alpha: float = 0.05
) -> float:
    """Sample-size-aware PSI threshold: ``max(base, (1/n_ref + 1/n_cur) chi2_{1-alpha}(B-1))``.

    Below the second term a PSI is what chance alone gives 1 - alpha of the time, so a
    fixed 0.1 would fire on most small windows; from ~1,000 rows per window the base rules.
    """
    if n_ref <= 0 or n_cur <= 0:
        raise ValueError(f"window sizes must be positive, got {n_ref} and {n_cur}")
    if n_bins < 2:
        return base
    noise = (1.0 / n_ref + 1.0 / n_cur) * _chi2_ppf(1.0 - alpha, n_bins - 1)
    return max(base, noise)


def psi_p_value(value: float, n_ref: int, n_cur: int, n_bins: int) -> float:
    """P-value of a PSI under "no drift", from its chi-square limit (see module docstring)."""
    if n_ref <= 0 or n_cur <= 0:
        raise ValueError(f"window sizes must be positive, got {n_ref} and {n_cur}")
    if n_bins < 2:
        return 1.0
    scaled = value / (1.0 / n_ref + 1.0 / n_cur)
    return _chi2_sf(scaled, n_bins - 1)
