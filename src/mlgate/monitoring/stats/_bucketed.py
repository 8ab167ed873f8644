"""Exact KS, Wasserstein-1 and quantile bins of two unsorted samples, mostly without sorting.

Why: at a million rows per window, sorting both windows and merging them took three
quarters of ``compare()``'s time (``np.sort`` here runs at ~50 ns a value), yet almost every
value sits where the order inside its neighbourhood cannot change either statistic.

How: every value goes to a bucket by arithmetic that is monotone in the value (subtractions,
multiplications by positive constants, clips and floors, each rounded monotonically by
IEEE 754): equal-width coarse buckets over the samples' central range, one per tail, and
each coarse bucket split again in proportion to the values it holds (:class:`_Grid`), so
that skewed data gets narrow buckets where it is dense. Integer-valued windows get one
bucket per integer instead (:func:`_discrete_parts`). Bucket order is value order and ties
never straddle buckets, so from counts per bucket alone the merged ECDF gap
``G = F_ref - F_cur`` is exact at every bucket's end.
Inside a bucket with ``r`` reference and ``c`` current values, ``G`` stays within
``[G_start - c/m, G_start + r/n]``. Hence:

- KS (``max |G|`` over the merged points): the bucket ends give a lower bound ``L``; only
  buckets whose bound exceeds ``L`` can hold the maximum, and only they are sorted.
- Wasserstein-1 (``sum |G_t| (x_{t+1} - x_t)``): where ``G`` keeps one sign ``s`` through a
  bucket, summation by parts turns the bucket's terms into ``s (S_cur/m - S_ref/n)`` plus
  end terms ``|G_start| x_first - |G_end| x_last``, and the end terms of neighbouring
  buckets cancel (``|G|`` at one bucket's end is ``|G|`` at the next one's start). Buckets
  of one repeated value add only their end terms; the rest, where ``G`` may cross zero,
  are sorted and summed term by term. ``S`` are per-bucket sums (``np.bincount``).
- Quantile edges and bin counts: an order statistic lies in the bucket where the cumulative
  count passes its rank, and ``#(x < e)`` is the count before ``e``'s bucket plus a count
  inside it; only those few buckets are looked into.

Gaps are kept as integers ``R m - C n`` so that every sign and bound decision is exact; the
floating-point sums differ from the sort-and-merge ones by rounding only (~1e-15 relative).
On drift-free data ``G`` wanders near zero and a few percent of the values need sorting; on
drifted data fewer. Infinities, windows of more than ~2e9 values and references with few
distinct values are left to the sorting path (:func:`numeric_drift_unsorted` returns None).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["BucketedParts", "bucketed_parts", "coarse_buckets"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

_TAIL_SHARE = 0.001
"""Share of the sampled values left to each tail bucket, so outliers do not widen the rest."""
_SAMPLE = 4096
_PER_BUCKET = 32
"""Values a fine bucket aims to hold: fewer means more buckets, more means more sorting."""
_MAX_SPLIT = 4096
_MIN_COARSE = 64
_MAX_COARSE = 1 << 14
_MAX_PRODUCT = 1 << 62
"""``n * m`` must stay below this for the integer gaps ``R m - C n`` to fit in int64."""
_MAX_DISCRETE_RANGE = 1 << 20
"""Widest range of integer values given one bucket per integer."""
_SHRINK = 1.0 - 2.0**-52
"""Splits are scaled by this, so that ``frac < 1`` times ``splits`` floors below ``splits``."""


@dataclass(frozen=True, slots=True, eq=False)
class BucketedParts:
    """What ``numeric_drift`` needs beyond counts: KS statistic, W1 and the quantile bins."""

    ks_statistic: float
    w1: float
    scale: float
    edges: FloatArray
    ref_counts: IntArray
    cur_counts: IntArray
    n_ref: int
    n_cur: int


def coarse_buckets(n_values: int) -> int:
    """About 128 values per coarse bucket, between 64 and 16,384 buckets."""
    want = max(n_values // 128, 1)
    return int(min(max(1 << (want - 1).bit_length(), _MIN_COARSE), _MAX_COARSE))


@dataclass(frozen=True, slots=True, eq=False)
class _Grid:
    """Two levels of equal-width buckets: coarse over [lo, hi), then each split to fit.

    Coarse buckets 1..count cover ``[lo, hi)`` (0 and count + 1 take the tails); a coarse
    bucket holding many values is split into equal-width fine buckets, so that dense parts
    of a skewed distribution get narrow buckets. A value's coarse position ``t`` is its
    shifted value times ``per_unit``; the coarse bucket is ``floor(t)`` (clipped), the
    split ``floor(frac(t) * splits)``. Both levels are monotone in the value, so the fine
    index (the coarse bucket's first fine bucket plus the split) is too.
    """

    lo: float
    per_unit: float
    count: int
    scale: FloatArray  # splits per coarse bucket, shrunk by 2 ulp: frac < 1 stays < splits
    first: FloatArray  # each coarse bucket's first fine bucket
    size: int

    def index(self, shifted: FloatArray) -> IntArray:
        frac, coarse = _coarse(shifted, self.per_unit, self.count)
        return self.fine(frac, coarse)

    def fine(self, frac: FloatArray, coarse: IntArray) -> IntArray:
        frac *= self.scale[coarse]
        np.floor(frac, out=frac)
        frac += self.first[coarse]
        return frac.astype(np.int64)


def _coarse(shifted: FloatArray, per_unit: float, count: int) -> tuple[FloatArray, IntArray]:
    """``(frac, coarse bucket)`` of each value; frac is a new array the caller may reuse."""
    t = shifted * per_unit
    np.clip(t, -1.0, float(count), out=t)  # the tails: frac 0 in buckets 0 and count + 1
    whole = np.floor(t)
    t -= whole  # exact: t and its floor are close enough for Sterbenz's lemma
    whole += 1.0
    return t, whole.astype(np.int64)


def _grid(
    ref: FloatArray, cur: FloatArray, coarse: int | None
) -> tuple[_Grid, FloatArray, IntArray, FloatArray, IntArray] | None:
    """The grid, and each window's shifted values and fine buckets."""
    sample = np.concatenate(
        (ref[:: max(ref.size // _SAMPLE, 1)], cur[:: max(cur.size // _SAMPLE, 1)])
    )
    k = int(sample.size * _TAIL_SHARE)
    lo, hi = (float(v) for v in np.partition(sample, (k, sample.size - 1 - k))[[k, -1 - k]])
    if not hi > lo:
        lo, hi = float(min(ref.min(), cur.min())), float(max(ref.max(), cur.max()))
    count = coarse or coarse_buckets(ref.size + cur.size)
    per_unit = count / (hi - lo) if hi > lo else math.inf  # hi - lo may be inf: 0 then
    if not (math.isfinite(per_unit) and per_unit > 0):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        ref_shifted, cur_shifted = ref - lo, cur - lo
    ref_frac, ref_coarse = _coarse(ref_shifted, per_unit, count)
    cur_frac, cur_coarse = _coarse(cur_shifted, per_unit, count)
    held = np.bincount(ref_coarse, minlength=count + 2) + np.bincount(
        cur_coarse, minlength=count + 2
    )
    splits = np.clip(-(-held // _PER_BUCKET), 1, _MAX_SPLIT)
    splits[[0, -1]] = 1  # tails have no width to split
    grid = _Grid(
        lo=lo,
        per_unit=per_unit,
        count=count,
        scale=splits * _SHRINK,
        first=(np.cumsum(splits) - splits).astype(np.float64),
        size=int(splits.sum()),
    )
    ref_index = grid.fine(ref_frac, ref_coarse)
    cur_index = grid.fine(cur_frac, cur_coarse)
    return grid, ref_shifted, ref_index, cur_shifted, cur_index


@dataclass(frozen=True, slots=True, eq=False)
class _Side:
    values: FloatArray
    shifted: FloatArray
    index: IntArray
    counts: IntArray
    sums: FloatArray
    start: IntArray  # values before each bucket

    @classmethod
    def of(cls, values: FloatArray, shifted: FloatArray, index: IntArray, size: int) -> _Side:
        counts = np.bincount(index, minlength=size).astype(np.int64, copy=False)
        sums: FloatArray = np.bincount(index, weights=shifted, minlength=size).astype(
            np.float64, copy=False
        )
        start = np.cumsum(counts) - counts
        return cls(values, shifted, index, counts, sums, start)


def bucketed_parts(
    ref: FloatArray, cur: FloatArray, bins: int, coarse: int | None = None
) -> BucketedParts | None:
    """KS statistic, W1, reference std and quantile bins of two NaN-free samples, or None.

    None means "use the sorting path": a window is empty or holds an infinity, the
    windows are too large for int64 gaps, or the reference may have ``bins`` or fewer
    distinct values (``quantile_edges`` then gives one bin per value). ``coarse`` sets the
    number of coarse buckets (tests use few, to exercise every branch on small samples).
    """
    n, m = int(ref.size), int(cur.size)
    if n == 0 or m == 0 or n * m >= _MAX_PRODUCT:
        return None
    if not (np.isfinite(ref).all() and np.isfinite(cur).all()):
        return None
    discrete = _discrete_parts(ref, cur, bins)
    if discrete is not None:
        return discrete
    built = _grid(ref, cur, coarse)
    if built is None:
        return None
    grid, ref_shifted, ref_index, cur_shifted, cur_index = built
    r = _Side.of(ref, ref_shifted, ref_index, grid.size)
    c = _Side.of(cur, cur_shifted, cur_index, grid.size)
    if np.count_nonzero(r.counts) <= bins:
        return None
    step = r.counts * m - c.counts * n
    g_end = np.cumsum(step)
    g_start = g_end - step
    nonempty = (r.counts + c.counts) > 0
    rising = g_start + r.counts * m  # highest the gap can reach inside the bucket
    falling = g_start - c.counts * n  # lowest
    bound = int(np.max(np.abs(g_end[nonempty])))
    positive, negative = falling >= 0, rising <= 0
    candidates = nonempty & ((~positive & ~negative) | (np.maximum(rising, -falling) > bound))
    definite = nonempty & ~candidates

    best = _best_gap(g_end, r.start + r.counts, c.start + c.counts, nonempty)
    sign = np.where(positive[definite], 1.0, -1.0)
    w1 = float(np.dot(sign, c.sums[definite] / m - r.sums[definite] / n))
    if np.any(candidates):
        refined_w1, refined_best = _refined(r, c, candidates, g_start, g_end, grid.lo)
        w1 += refined_w1
        if refined_best is not None and abs(refined_best[0]) > abs(best[0]):
            best = refined_best
    if not math.isfinite(w1):
        return None
    _, r_at, c_at = best
    edges = _quantile_edges(r, bins)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = float(np.std(ref))
    return BucketedParts(
        ks_statistic=abs(r_at / n - c_at / m),
        w1=max(w1, 0.0),
        scale=scale if math.isfinite(scale) else math.inf,
        edges=edges,
        ref_counts=_bin_counts(r, grid, edges),
        cur_counts=_bin_counts(c, grid, edges),
        n_ref=n,
        n_cur=m,
    )


def _discrete_parts(ref: FloatArray, cur: FloatArray, bins: int) -> BucketedParts | None:
    """Integer-valued windows over a modest range: one bucket per integer, all exact.

    Counts, integer gaps, order statistics and bin counts all come from ``np.bincount``;
    every bucket holds one value, so KS is the largest gap at a bucket's end and W1 sums
    ``|G|`` times the distance to the next value present.
    """
    lowest = float(min(ref.min(), cur.min()))
    span = float(max(ref.max(), cur.max())) - lowest
    if not (0 <= span < _MAX_DISCRETE_RANGE) or lowest != math.floor(lowest):
        return None
    if not (np.array_equal(ref, np.floor(ref)) and np.array_equal(cur, np.floor(cur))):
        return None
    n, m = int(ref.size), int(cur.size)
    size = int(span) + 1
    ref_counts = np.bincount((ref - lowest).astype(np.int64), minlength=size)
    cur_counts = np.bincount((cur - lowest).astype(np.int64), minlength=size)
    present = np.flatnonzero(ref_counts + cur_counts)
    if np.count_nonzero(ref_counts) <= bins:
        return None
    r_upto, c_upto = np.cumsum(ref_counts)[present], np.cumsum(cur_counts)[present]
    gap = r_upto * m - c_upto * n
    k = int(np.argmax(np.abs(gap)))
    values = present.astype(np.float64) + lowest
    w1 = float(np.dot(np.abs(gap[:-1]).astype(np.float64), np.diff(values)))
    w1 /= float(n) * float(m)
    ks = abs(int(r_upto[k]) / n - int(c_upto[k]) / m)
    # quantile_edges: the order statistics at ceil(n k / bins) - 1, deduplicated.
    ranks = (n * np.arange(1, bins, dtype=np.int64) + bins - 1) // bins - 1
    ref_upto_all = np.cumsum(ref_counts)
    edges = np.unique(np.searchsorted(ref_upto_all, ranks, side="right").astype(np.float64))
    edges = edges + lowest
    edges = edges[edges > float(ref.min())]
    cuts = (edges - lowest).astype(np.int64)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = float(np.std(ref))
    return BucketedParts(
        ks_statistic=ks,
        w1=w1,
        scale=scale if math.isfinite(scale) else math.inf,
        edges=np.ascontiguousarray(edges, dtype=np.float64),
        ref_counts=_split_counts(ref_counts, cuts),
        cur_counts=_split_counts(cur_counts, cuts),
        n_ref=n,
        n_cur=m,
    )


def _split_counts(counts: IntArray, cuts: IntArray) -> IntArray:
    """Bin counts from per-integer counts, bins left-closed at the integer offsets ``cuts``."""
    upto = np.concatenate(([0], np.cumsum(counts)))
    return np.diff(np.concatenate(([0], upto[cuts], [upto[-1]]))).astype(np.int64)


def _best_gap(
    g_end: IntArray, r_upto: IntArray, c_upto: IntArray, nonempty: BoolArray
) -> tuple[int, int, int]:
    """``(gap, R, C)`` at the bucket end where ``|R m - C n|`` is largest."""
    where = np.flatnonzero(nonempty)
    k = int(where[np.argmax(np.abs(g_end[where]))])
    return int(g_end[k]), int(r_upto[k]), int(c_upto[k])


def _refined(
    r: _Side,
    c: _Side,
    chosen: BoolArray,
    g_start: IntArray,
    g_end: IntArray,
    lo: float,
) -> tuple[float, tuple[int, int, int] | None]:
    """W1 terms of the chosen buckets and the largest gap inside them, by sorting them.

    A chosen bucket of one repeated value needs no sorting: its only merged point has the
    gap at the bucket's end, and of its W1 terms only the end terms are left. (Repeated
    values are judged unshifted: shifting may round distinct values together.)
    """
    n, m = int(r.values.size), int(c.values.size)
    at_r, at_c = _positions(r, chosen), _positions(c, chosen)
    values = np.concatenate((r.values[at_r], c.values[at_c]))
    shifted = np.concatenate((r.shifted[at_r], c.shifted[at_c]))
    buckets = np.concatenate((r.index[at_r], c.index[at_c]))
    from_ref = np.zeros(values.size, dtype=bool)
    from_ref[: at_r.size] = True
    nm = float(n) * float(m)
    low = np.full(g_end.size, np.inf)
    high = np.full(g_end.size, -np.inf)
    np.minimum.at(low, buckets, values)
    np.maximum.at(high, buckets, values)
    single = chosen & (low == high)
    w1 = 0.0
    if np.any(single):
        ends = (np.abs(g_start[single]) - np.abs(g_end[single])).astype(np.float64)
        w1 = float(np.dot(ends, low[single] - lo)) / nm
        keep = np.flatnonzero(~single[buckets])
        values, shifted = values[keep], shifted[keep]
        buckets, from_ref = buckets[keep], from_ref[keep]
    if values.size == 0:
        return w1, None
    order = np.argsort(values, kind="stable")
    v, sv, b, from_ref = values[order], shifted[order], buckets[order], from_ref[order]
    size = v.size
    # Global counts at each point: the bucket's start plus the points so far in the bucket.
    new = np.empty(size, dtype=bool)
    new[0] = True
    np.not_equal(b[1:], b[:-1], out=new[1:])
    segment = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ref_so_far = np.cumsum(from_ref)
    ref_before = (ref_so_far - from_ref)[starts]
    big_r = r.start[b] + ref_so_far - ref_before[segment]
    big_c = c.start[b] + (np.arange(1, size + 1) - ref_so_far) - (starts - ref_before)[segment]
    # Tied points take the counts at the last of the tie (right-continuous ECDFs).
    last = np.empty(size, dtype=bool)
    np.not_equal(v[1:], v[:-1], out=last[:-1])
    last[-1] = True
    if np.count_nonzero(last) < size:
        tie_ends = np.flatnonzero(last)
        span = np.diff(tie_ends, prepend=-1)
        big_r, big_c = np.repeat(big_r[tie_ends], span), np.repeat(big_c[tie_ends], span)
    gap = big_r * m - big_c * n
    k = int(np.argmax(np.abs(gap)))
    best = (int(gap[k]), int(big_r[k]), int(big_c[k]))

    same = ~new[1:]
    inner = float(np.dot(np.abs(gap[:-1][same]).astype(np.float64), np.diff(v)[same]))
    seg_buckets = b[starts]
    seg_last = np.append(starts[1:] - 1, size - 1)
    ends_terms = np.dot(np.abs(g_start[seg_buckets]).astype(np.float64), sv[starts]) - np.dot(
        np.abs(g_end[seg_buckets]).astype(np.float64), sv[seg_last]
    )
    return w1 + (inner + float(ends_terms)) / nm, best


def _positions(side: _Side, chosen: BoolArray) -> IntArray:
    """Where the window's values in the chosen buckets are."""
    return np.flatnonzero(chosen[side.index])


def _looked_into(side: _Side, buckets: IntArray) -> list[FloatArray]:
    """The window's values in each of the given buckets (one pass over the window)."""
    table = np.zeros(side.counts.size, dtype=bool)
    table[buckets] = True
    at = _positions(side, table)
    values, index = side.values[at], side.index[at]
    return [values[index == b] for b in buckets]


def _quantile_edges(r: _Side, bins: int) -> FloatArray:
    """``quantile_edges`` of the reference, for a reference with more than ``bins`` values."""
    n = int(r.values.size)
    k = np.arange(1, bins, dtype=np.int64)
    ranks = (n * k + bins - 1) // bins - 1  # ceil(n k / bins) - 1, as quantile_edges
    where = np.searchsorted(r.start + r.counts, ranks, side="right")
    inside = _looked_into(r, where)
    chosen = np.array(
        [
            np.partition(values, rank)[rank]
            for values, rank in zip(inside, ranks - r.start[where], strict=True)
        ],
        dtype=np.float64,
    )
    edges = np.unique(chosen)
    edges = edges[edges > float(r.values.min())]
    return np.ascontiguousarray(edges, dtype=np.float64)


def _bin_counts(side: _Side, grid: _Grid, edges: FloatArray) -> IntArray:
    """Counts in ``(-inf, e1), [e1, e2), ..., [ek, inf)``, as ``bin_counts``."""
    shifted = edges - grid.lo
    where = grid.index(shifted)
    # Values below each edge: all of the buckets before its own, and some of its own.
    below = side.start[where] + np.array(
        [
            np.count_nonzero(values < e)
            for values, e in zip(_looked_into(side, where), edges, strict=True)
        ],
        dtype=np.int64,
    )
    return np.diff(np.concatenate(([0], below, [side.values.size]))).astype(np.int64)
