"""A reference's quantile grid: a weighted stand-in for the sample in KS and Wasserstein.

Re-exported by :mod:`mlgate.monitoring.stats`; :mod:`mlgate.monitoring.profile` explains the
error bound.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mlgate.monitoring.stats._ecdf import (
    ecdf_gaps,
    finite_part,
    ks_from_gaps,
    normalise,
    std_finite,
    strip_nan,
    w1_from_gaps,
)

__all__ = ["GRID_SIZE", "grid_cum_weights", "grid_errors", "mix_infinities", "quantile_grid"]

GRID_SIZE = 1001
"""Points of a profile's quantile grid: KS from it is within ~1/(2 * 1000) of the exact value."""

FloatArray = NDArray[np.float64]


def quantile_grid(reference_sorted: ArrayLike, size: int = GRID_SIZE) -> tuple[FloatArray, bool]:
    """Finite reference values standing in for the sample: ``(grid, is_sample)``.

    Up to ``size`` finite values the grid is the sample itself (``is_sample``, equal
    weights). Otherwise it is the order statistics at ranks ``round(k (n-1) / (size-1))``,
    weighted by the trapezoid rule (:func:`grid_cum_weights`): each interior point stands for
    ``1/(size-1)`` of the rows, each end point for half that.
    """
    if size < 2:
        raise ValueError(f"grid size must be at least 2, got {size}")
    finite = finite_part(strip_nan(np.asarray(reference_sorted, dtype=np.float64)))
    if finite.size <= size:
        return finite.copy(), True
    ranks = np.round(np.arange(size) * ((finite.size - 1) / (size - 1))).astype(np.int64)
    return finite[ranks], False


def grid_cum_weights(n_points: int, is_sample: bool) -> FloatArray:
    """Cumulative weights (length ``n_points + 1``, 0 to 1) of a :func:`quantile_grid`."""
    if n_points == 0:
        return np.zeros(1)
    if is_sample or n_points == 1:
        return np.arange(n_points + 1, dtype=np.float64) / n_points
    weights = np.full(n_points, 1.0 / (n_points - 1))
    weights[[0, -1]] = 0.5 / (n_points - 1)
    cum = np.concatenate(([0.0], np.cumsum(weights)))
    cum[-1] = 1.0
    return cum


def mix_infinities(
    finite: FloatArray, cum: FloatArray, n_neg: int, n_fin: int, n_pos: int
) -> tuple[FloatArray, FloatArray]:
    """Extend a weighted ECDF of the finite values with point masses at -inf and +inf."""
    if n_neg == 0 and n_pos == 0:
        return finite, cum
    total = float(n_neg + n_fin + n_pos)
    low, high = n_neg / total, n_fin / total
    values = np.concatenate(([-np.inf] * (n_neg > 0), finite, [np.inf] * (n_pos > 0)))
    new_cum = np.concatenate(
        ([0.0], [low] * (n_neg > 0), low + cum[1:] * high, [1.0] * (n_pos > 0))
    )
    new_cum[-1] = 1.0
    return values, new_cum


def grid_errors(
    reference_sorted: ArrayLike, grid: FloatArray, grid_is_sample: bool
) -> tuple[float, float]:
    """How far a :func:`quantile_grid` stands from its sample: ``(ks, wasserstein_normalised)``.

    By the triangle inequality these bound the error of KS and normalised Wasserstein
    computed from the grid instead of the sample, for any current window.
    """
    ref = strip_nan(np.asarray(reference_sorted, dtype=np.float64))
    finite = finite_part(ref)
    if grid_is_sample or finite.size == 0:
        return 0.0, 0.0
    cum = grid_cum_weights(grid.size, grid_is_sample)
    n_neg = int(np.searchsorted(ref, -np.inf, side="right"))
    n_pos = int(ref.size - np.searchsorted(ref, np.inf, side="left"))
    ks_ref, ks_cum = mix_infinities(grid, cum, n_neg, finite.size, n_pos)
    ks_error = ks_from_gaps(ecdf_gaps(ks_ref, ref, ks_cum)[1])
    w1 = w1_from_gaps(*ecdf_gaps(grid, finite, cum))
    w_error = normalise(w1, std_finite(finite))
    return ks_error, math.inf if math.isnan(w_error) else w_error
