"""What a drift report plots, per feature: binned shares of both windows, never raw rows.

A plot holds a bounded number of numbers whatever the window size (at most 30 histogram
bins and 121 ECDF points for a numeric feature, at most 21 bars for a categorical one), so
a page for a million rows weighs what a page for a thousand does.

Numeric features get equal-width bins over a range both windows share, from the lower
0.1% to the upper 99.9% quantile of either window, so one outlier does not squash the
picture; the shares beyond it are kept as ``below`` and ``above``. Integer data gets
whole-number bins centred on the integers. (The test's own bins,
the reference's deciles, hold a tenth of the reference each by construction, so a
histogram on them would show the reference flat whatever its shape.) Shares are fractions
of each window's finite values, so windows of different sizes compare directly. From a
reference profile the reference's shares come from its quantile grid, whose ECDF is within
the profile's ``ks_error`` of the data's at every point; ``approximate`` says so.

Categorical features show the 20 categories with the largest share in either window
and fold the rest into "other"; categories absent from the reference are flagged ``new``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlgate.monitoring._columns import Frame, category_counts, frame_columns, numeric_column
from mlgate.monitoring.drift import DriftReport
from mlgate.monitoring.profile import CategoricalProfile, ReferenceProfile
from mlgate.monitoring.stats import grid_cum_weights

__all__ = [
    "HISTOGRAM_BINS",
    "TOP_CATEGORIES",
    "CategoricalPlot",
    "FeaturePlot",
    "NoPlot",
    "NumericPlot",
    "plots_from_frames",
    "plots_from_profile",
]

HISTOGRAM_BINS = 30
"""Most bins of a numeric histogram (integer data gets whole-number bins, maybe fewer)."""
_STRIDE = 4  # ECDF points per histogram bin
_EXACT_INTEGERS = 2.0**50  # beyond this, x - 0.5 is no longer exact
TOP_CATEGORIES = 20
_TAIL = 0.001  # share of either window allowed beyond each end of the plotted range

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class NumericPlot:
    """Histogram shares on shared equal-width ``edges`` and both ECDFs at ``ecdf_x``.

    ``reference[i]`` is the share of the reference's finite values in bin i, ``[e_i,
    e_{i+1})`` and the last bin closed (as :func:`numpy.histogram` bins); ``below`` /
    ``above`` are the (reference, current) shares outside ``edges``. ``ecdf_reference[j]``
    is the share below ``ecdf_x[j]`` (at or below, for the last point).
    """

    edges: tuple[float, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    below: tuple[float, float]
    above: tuple[float, float]
    ecdf_x: tuple[float, ...]
    ecdf_reference: tuple[float, ...]
    ecdf_current: tuple[float, ...]
    approximate: bool = False


@dataclass(frozen=True, slots=True)
class CategoricalPlot:
    """Shares of the top categories in each window, the rest folded into "other"."""

    categories: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    new: tuple[bool, ...]
    other_reference: float = 0.0
    other_current: float = 0.0
    other_count: int = 0
    other_new: int = 0


@dataclass(frozen=True, slots=True)
class NoPlot:
    """Nothing to draw, and why (an empty window, no finite values, an absent column)."""

    reason: str


FeaturePlot = NumericPlot | CategoricalPlot | NoPlot


@dataclass(frozen=True, slots=True)
class _Binned:
    """One window on the plot's fine grid ``x``: shares below ``x[0]``, in each interval
    ``[x_i, x_{i+1})`` (the last one closed, as :func:`numpy.histogram` has it), above."""

    below: float
    shares: FloatArray
    above: float


@dataclass(frozen=True, slots=True)
class _Grid:
    """A profile's quantile grid: sorted finite points, ``cum[k]`` the weight of the first k."""

    points: FloatArray
    cum: FloatArray

    @property
    def size(self) -> int:
        return int(self.points.size)

    def quantiles(self, qs: tuple[float, float]) -> tuple[float, float]:
        """For each q the smallest point with at least weight q at or below it."""
        k = np.minimum(np.searchsorted(self.cum[1:], qs, side="left"), self.points.size - 1)
        return float(self.points[k[0]]), float(self.points[k[1]])

    def integers(self) -> bool:
        return bool(np.array_equal(self.points, np.floor(self.points)))

    def binned(self, x: FloatArray) -> _Binned:
        before = self.cum[np.searchsorted(self.points, x, side="left")]  # weight < x_j
        up_to_last = float(self.cum[np.searchsorted(self.points, x[-1], side="right")])
        inner = np.diff(np.concatenate((before[:-1], [up_to_last])))
        return _Binned(float(before[0]), inner, 1.0 - up_to_last)


@dataclass(frozen=True, slots=True)
class _Sample:
    """Raw finite values, unsorted. A plot needs two quantiles (a partition) and counts on
    an equal-width grid (numpy's histogram computes each value's bin instead of searching
    for it): a few times cheaper than sorting a million values."""

    values: FloatArray

    @classmethod
    def of(cls, values: npt.NDArray[Any]) -> _Sample:
        as_float = np.asarray(values, dtype=np.float64)
        return cls(as_float[np.isfinite(as_float)])

    @property
    def size(self) -> int:
        return int(self.values.size)

    def quantiles(self, qs: tuple[float, float]) -> tuple[float, float]:
        low, high = np.quantile(self.values, qs, method="inverted_cdf")
        return float(low), float(high)

    def integers(self) -> bool:
        return bool(np.array_equal(self.values, np.floor(self.values)))

    def binned(self, x: FloatArray) -> _Binned:
        # range= with a bin count takes numpy's equal-width path, whose edges are exactly
        # np.linspace(x[0], x[-1], x.size), i.e. x.
        counts, _ = np.histogram(self.values, bins=x.size - 1, range=(x[0], x[-1]))
        n = self.values.size
        below = int(np.count_nonzero(self.values < x[0]))
        above = n - below - int(counts.sum())
        return _Binned(below / n, counts / n, above / n)


def _tuple(values: FloatArray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _fine_grid(lo: float, hi: float, *, integers: bool) -> FloatArray:
    """The ECDF's points, every _STRIDE-th of them a histogram edge.

    Integer data gets edges halfway between whole numbers and a whole-number bin width,
    so that every bin holds as many possible values as the next: equal-width bins that
    hold two integers, then three, draw a comb the data does not have.
    """
    if integers and max(abs(lo), abs(hi)) < _EXACT_INTEGERS:
        width = max(1, math.ceil((hi - lo + 1) / HISTOGRAM_BINS))
        bins = math.ceil((hi - lo + 1) / width)
        x = np.linspace(lo - 0.5, lo - 0.5 + bins * width, bins * _STRIDE + 1)
    else:
        x = np.linspace(lo, hi, HISTOGRAM_BINS * _STRIDE + 1)
    if not np.all(x[1:] > x[:-1]):  # one constant, or a span too narrow for its magnitude
        half = max(abs(lo) * 0.01, 0.5)
        x = np.linspace(lo - half, hi + half, HISTOGRAM_BINS * _STRIDE + 1)
    return x


def _numeric_plot(ref: _Grid | _Sample, cur: _Sample, *, approximate: bool) -> FeaturePlot:
    for window, values in (("reference", ref), ("current window", cur)):
        if values.size == 0:
            return NoPlot(f"nothing to plot: the {window} has no finite values")
    (ref_lo, ref_hi), (cur_lo, cur_hi) = (w.quantiles((_TAIL, 1.0 - _TAIL)) for w in (ref, cur))
    lo, hi = min(ref_lo, cur_lo), max(ref_hi, cur_hi)
    if not math.isfinite(hi - lo):
        return NoPlot("nothing to plot: the values span more than a float can hold")
    x = _fine_grid(lo, hi, integers=ref.integers() and cur.integers())
    windows = (ref.binned(x), cur.binned(x))
    bins = (x.size - 1) // _STRIDE
    bars = [np.maximum(w.shares, 0.0).reshape(bins, _STRIDE).sum(axis=1) for w in windows]
    ecdfs = [
        np.minimum(w.below + np.concatenate(([0.0], np.cumsum(w.shares))), 1.0) for w in windows
    ]
    return NumericPlot(
        edges=_tuple(x[::_STRIDE]),
        reference=_tuple(bars[0]),
        current=_tuple(bars[1]),
        below=(windows[0].below, windows[1].below),
        above=(max(windows[0].above, 0.0), max(windows[1].above, 0.0)),
        ecdf_x=_tuple(x),
        ecdf_reference=_tuple(ecdfs[0]),
        ecdf_current=_tuple(ecdfs[1]),
        approximate=approximate,
    )


def _categorical_plot(ref: Mapping[str, int], cur: Mapping[str, int]) -> FeaturePlot:
    n_ref, n_cur = sum(ref.values()), sum(cur.values())
    for window, n in (("reference", n_ref), ("current window", n_cur)):
        if n == 0:
            return NoPlot(f"nothing to plot: the {window} has no non-missing values")
    names = set(ref) | set(cur)
    share_ref = {c: ref.get(c, 0) / n_ref for c in names}
    share_cur = {c: cur.get(c, 0) / n_cur for c in names}
    ranked = sorted(names, key=lambda c: (-max(share_ref[c], share_cur[c]), c))
    # "other (1 category)" would take a bar to hide one: show it instead.
    shown = ranked if len(ranked) <= TOP_CATEGORIES + 1 else ranked[:TOP_CATEGORIES]
    rest = ranked[len(shown) :]
    return CategoricalPlot(
        categories=tuple(shown),
        reference=tuple(share_ref[c] for c in shown),
        current=tuple(share_cur[c] for c in shown),
        new=tuple(c not in ref for c in shown),
        other_reference=sum(share_ref[c] for c in rest),
        other_current=sum(share_cur[c] for c in rest),
        other_count=len(rest),
        other_new=sum(1 for c in rest if c not in ref),
    )


def _absent(name: str) -> NoPlot:
    return NoPlot(f"nothing to plot: column {name!r} is absent from the current window")


def plots_from_frames(
    report: DriftReport, reference_frame: Frame, current_frame: Frame
) -> dict[str, FeaturePlot]:
    """A plot for every feature of ``report``, from the frames :func:`compare` judged.

    Each feature is drawn as the kind the report gives it, so the frames must hold every
    reference column of the report (a current column may be absent).
    """
    ref_columns, _ = frame_columns(reference_frame, "reference")
    cur_columns, _ = frame_columns(current_frame, "current window")
    plots: dict[str, FeaturePlot] = {}
    for name, feature in report.features.items():
        cur_raw = cur_columns.get(name)
        if cur_raw is None:
            plots[name] = _absent(name)
        elif feature.kind == "numeric":
            ref = _Sample.of(numeric_column(name, ref_columns[name]))
            cur = _Sample.of(numeric_column(name, cur_raw))
            plots[name] = _numeric_plot(ref, cur, approximate=False)
        else:
            ref_counts, _ = category_counts(name, ref_columns[name])
            cur_counts, _ = category_counts(name, cur_raw)
            plots[name] = _categorical_plot(ref_counts, cur_counts)
    return plots


def plots_from_profile(
    report: DriftReport, profile: ReferenceProfile, current_frame: Frame
) -> dict[str, FeaturePlot]:
    """A plot for every feature of ``report`` (from :func:`compare_profile` on ``profile``),
    the reference side from the profile's quantile grid or category counts."""
    cur_columns, _ = frame_columns(current_frame, "current window")
    plots: dict[str, FeaturePlot] = {}
    for name in report.features:
        feature = profile.features[name]
        cur_raw = cur_columns.get(name)
        if cur_raw is None:
            plots[name] = _absent(name)
        elif isinstance(feature, CategoricalProfile):
            cur_counts, _ = category_counts(name, cur_raw)
            plots[name] = _categorical_plot(feature.frequencies, cur_counts)
        else:
            grid = np.asarray(feature.grid, dtype=np.float64)
            ref = _Grid(grid, grid_cum_weights(grid.size, feature.grid_is_sample))
            cur = _Sample.of(numeric_column(name, cur_raw))
            plots[name] = _numeric_plot(ref, cur, approximate=not feature.grid_is_sample)
    return plots
