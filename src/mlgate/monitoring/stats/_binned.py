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
    "MIN_EXPECTED",
    "PSI_PSEUDO_COUNT",
    "Chi2Result",
    "PooledCounts",
    "bin_counts",
    "chi2_two_sample",
    "js_distance",
    "js_threshold",
    "kl_divergence",
    "pool_sparse",
    "pooling_note",
    "psi",
    "psi_p_value",
    "psi_threshold",
    "quantile_edges",
]

DEFAULT_BINS = 10
PSI_PSEUDO_COUNT = 0.5
"""Added to every bin's count before PSI and KL take shares (Jeffreys prior)."""
MIN_EXPECTED = 5.0
"""Cochran's rule: the fewest expected counts per cell for the chi-square approximation."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Chi2Result:
    statistic: float
    p_value: float
    dof: int


@dataclass(frozen=True, slots=True, eq=False)
class PooledCounts:
    """A 2 x K table after :func:`pool_sparse`; ``pooled`` counts the seen cells merged."""

    reference: IntArray
    current: IntArray
    pooled: int


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
    test: statistic 0, p-value 1, dof 0. The p-value is chi-square's limit, which is far too
    small where expected counts are below ~5: merge sparse cells first (:func:`pool_sparse`).
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


def pool_sparse(
    ref_counts: ArrayLike, cur_counts: ArrayLike, min_expected: float = MIN_EXPECTED
) -> PooledCounts:
    """Merge the cells of a 2 x K table too sparse for the chi-square approximation.

    Cochran (1954, "Some methods for strengthening the common chi-square tests",
    Biometrics 10) asks for expected counts of at least 5. Cell j's smaller expected count
    is ``(r_j + c_j) * min(n_ref, n_cur) / (n_ref + n_cur)``; with 2,000 categories and a
    100-row window most cells expect far below 1, the statistic's tail is then much heavier
    than chi-square's, and drift-free windows get p-values like 1e-11. So:

    - seen cells (reference count > 0) below ``min_expected`` merge into one *other* cell,
      placed after the kept ones; if that cell is itself below ``min_expected`` it joins
      the kept seen cell with the smallest total (when there is one);
    - sparse unseen cells (reference count 0) merge into one last cell, kept whatever its
      expected count. Merging them changes neither the chi-square statistic (an unseen
      cell adds ``c_j * n_ref / n_cur``, linear in ``c_j``) nor the JS divergence (it adds
      ``c_j / n_cur * ln 2``), only the degrees of freedom; keeping them apart from the
      seen cells keeps a new category that fills the window visible however sparse the
      rest (its share then has to pass the JS or PSI threshold too).

    Cells empty on both sides are dropped. A table without sparse cells comes back
    unchanged, so its statistics stay bit-identical.
    """
    _check_pair(ref_counts, cur_counts)
    r = np.asarray(ref_counts, dtype=np.int64).ravel()
    c = np.asarray(cur_counts, dtype=np.int64).ravel()
    live = (r + c) > 0
    r, c = r[live], c[live]
    n_ref, n_cur = int(r.sum()), int(c.sum())
    if n_ref + n_cur == 0:
        return PooledCounts(r, c, 0)
    share_small = min(n_ref, n_cur) / (n_ref + n_cur)
    column = (r + c).astype(np.float64)
    seen = r > 0
    thin = column * share_small < min_expected
    sparse, unseen = seen & thin, ~seen & thin
    if not thin.any():
        return PooledCounts(r, c, 0)
    keep = ~thin
    kept_r, kept_c = r[keep].copy(), c[keep].copy()
    parts_r, parts_c = [kept_r], [kept_c]
    if sparse.any():
        other_r, other_c = int(r[sparse].sum()), int(c[sparse].sum())
        kept_seen = np.flatnonzero(kept_r > 0)
        if (other_r + other_c) * share_small < min_expected and kept_seen.size:
            smallest = int(kept_seen[np.argmin((kept_r + kept_c)[kept_seen])])
            kept_r[smallest] += other_r
            kept_c[smallest] += other_c
        else:
            parts_r.append(np.array([other_r], dtype=np.int64))
            parts_c.append(np.array([other_c], dtype=np.int64))
    if unseen.any():
        parts_r.append(np.zeros(1, dtype=np.int64))
        parts_c.append(np.array([int(c[unseen].sum())], dtype=np.int64))
    return PooledCounts(
        np.concatenate(parts_r), np.concatenate(parts_c), int(np.count_nonzero(sparse))
    )


def pooling_note(pooled: PooledCounts) -> str:
    """The sentence a drift reason gives for :func:`pool_sparse`'s merge."""
    n = pooled.pooled
    noun = "category" if n == 1 else "categories"
    cells = pooled.reference.size
    return (
        f"{n} sparse {noun} (under {MIN_EXPECTED:g} expected) pooled for chi2, psi and js, "
        f"leaving {cells} cell{'' if cells == 1 else 's'}"
        + ("; too few to test" if cells < 2 else "")
    )


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


def js_threshold(
    n_ref: int, n_cur: int, n_bins: int, base: float = 0.1, alpha: float = 0.05
) -> float:
    """Sample-size-aware threshold for the base-2 JS distance of :func:`js_distance`.

    Derivation: with ``m = (p + q) / 2`` and ``d = q - p``, a second-order expansion of
    ``JSD = (KL(p || m) + KL(q || m)) / 2`` gives ``JSD ~ (1/8) sum d_i^2 / m_i`` nats.
    For two drift-free multinomial samples ``sum d_i^2 / m_i`` is the homogeneity
    statistic divided by ``n_ref n_cur / (n_ref + n_cur)``, so
    ``JSD ~ (1/n_ref + 1/n_cur) chi2(B - 1) / 8`` (B cells compared), an eighth of the
    PSI's limit (:func:`psi_threshold`). The distance is
    ``sqrt(JSD / ln 2)``, so chance alone stays below
    ``sqrt((1/n_ref + 1/n_cur) chi2_{1-alpha}(B - 1) / (8 ln 2))`` 1 - alpha of the time;
    the threshold is the larger of that and ``base``. The expansion needs non-sparse cells:
    pool them first (:func:`pool_sparse`). A 100-row window over 4 cells needs ~0.12.
    """
    if n_ref <= 0 or n_cur <= 0:
        raise ValueError(f"window sizes must be positive, got {n_ref} and {n_cur}")
    if n_bins < 2:
        return base
    divergence = (1.0 / n_ref + 1.0 / n_cur) * _chi2_ppf(1.0 - alpha, n_bins - 1) / 8.0
    return max(base, math.sqrt(divergence / math.log(2.0)))
