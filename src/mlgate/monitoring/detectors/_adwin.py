"""ADWIN: adaptive windowing over an exponential histogram (Bifet & Gavaldà, 2007).

ADWIN keeps every record since the last drift, compressed into an exponential
histogram: level ``i`` holds at most ``max_buckets`` buckets of ``2**i``
consecutive records (their sum and their sum of squared deviations); when a
level overflows, its two oldest buckets merge into one bucket of the next
level (Datar et al. 2002; the variance merge is Chan et al.'s pairwise
formula). Every ``clock`` records it tries each bucket boundary as a cut
``W = W0 · W1`` and signals a change when, for some cut,

    |mean(W0) - mean(W1)| > sqrt(2 m σ²_W δ') + 2/3 δ' m,
    m = 1/(n0 - L + 1) + 1/(n1 - L + 1),   δ' = ln(2 ln|W| / δ),

the variance-aware Bernstein bound of ADWIN2 as MOA and river evaluate it
(``L`` = ``min_window_length``). Defaults are river's: δ = 0.002, clock 32,
5 buckets per level, sub-windows of at least 5 records, no check before 10.

**Same detections as river.** With no deletions the histogram's shape depends
only on how many records it holds (level ``i`` has received
``m_i = max(0, (m_{i-1} - M + 1) // 2)`` buckets, ``M`` = ``max_buckets``),
so a batch is folded in level by level with array operations, and the buckets
present at each of the batch's check points are sliced out of those arrays.
river's ADWIN resets completely after a drift (its ``update`` builds a new
window); so does this one, which is why deletions never need replaying. On
0/1 streams every sum is an exact integer and detections coincide with
river 0.26's index for index; on real-valued streams the window variance is
summed in a different order (per bucket here, record by record in river), a
difference in the last bits only.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from mlgate.monitoring.detectors._base import DetectorBase

__all__ = ["ADWIN"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


class ADWIN(DetectorBase):
    """Adaptive windowing: a change in the mean of any bounded or unbounded numeric stream.

    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> errors = np.concatenate([rng.random(2_000) < 0.2, rng.random(1_000) < 0.5])
    >>> ADWIN().update_many(errors).tolist()
    [2079]
    """

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        if not 0.0 < delta < 1.0:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        if clock < 1 or max_buckets < 1 or min_window_length < 1 or grace_period < 1:
            raise ValueError(
                "clock, max_buckets, min_window_length and grace_period must be at least 1, "
                f"got {clock}, {max_buckets}, {min_window_length}, {grace_period}"
            )
        super().__init__()
        self.delta = delta
        self.clock = clock
        self.max_buckets = max_buckets
        self.min_window_length = min_window_length
        self.grace_period = grace_period
        self._restart()

    def _restart(self) -> None:
        self._n = 0
        # _totals[i][k] / _m2s[i][k]: sum and squared deviations of the k-th oldest
        # bucket of level i, which covers 2**i records.
        self._totals: list[list[float]] = []
        self._m2s: list[list[float]] = []

    @property
    def width(self) -> int:
        """Records in the window (all of them since the last drift)."""
        return self._n

    @property
    def estimation(self) -> float:
        """Mean of the window (0.0 when empty, as in river)."""
        return math.fsum(math.fsum(row) for row in self._totals) / self._n if self._n else 0.0

    # -- one record -------------------------------------------------------------------

    def _step(self, x: float) -> bool:
        self._n += 1
        total, m2 = x, 0.0
        level = 0
        while True:
            if level == len(self._totals):
                self._totals.append([])
                self._m2s.append([])
            row_t, row_v = self._totals[level], self._m2s[level]
            row_t.append(total)
            row_v.append(m2)
            if len(row_t) <= self.max_buckets:
                break
            size = float(1 << level)
            d = row_t[0] / size - row_t[1] / size
            m2 = row_v[0] + row_v[1] + size * 0.5 * d * d
            total = row_t[0] + row_t[1]
            del row_t[:2], row_v[:2]
            level += 1
        if self._n % self.clock or self._n <= self.grace_period:
            return False
        levels = len(self._totals)
        shape = (1, levels, self.max_buckets)
        totals, m2s, sizes = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        for i in range(levels):
            row = levels - 1 - i  # oldest level first
            k = len(self._totals[i])
            totals[0, row, :k] = self._totals[i]
            m2s[0, row, :k] = self._m2s[i]
            sizes[0, row, :k] = float(1 << i)
        return bool(self._cuts(totals, m2s, sizes, np.array([self._n]))[0])

    # -- a chunk ----------------------------------------------------------------------

    def _counts(self, n: IntArray) -> list[tuple[IntArray, IntArray]]:
        """Per level, (buckets received, pairs merged upward) after ``n`` records."""
        out = []
        m = n
        while True:
            p = np.maximum(0, (m - self.max_buckets + 1) // 2)
            out.append((m, p))
            if not p.any():
                return out
            m = p

    def _consume(self, xs: FloatArray) -> tuple[int, bool]:
        start, end = self._n, self._n + xs.size
        first = max(self.clock * (start // self.clock + 1), self.grace_period + 1)
        first = -(-first // self.clock) * self.clock
        checks = np.arange(first, end + 1, self.clock, dtype=np.int64)
        at_start = self._counts(np.array([start]))
        at_end = self._counts(np.array([end]))
        at_checks = self._counts(checks)
        levels = len(at_end)

        # Fold the chunk in level by level: each level's held buckets followed by
        # what arrives from below; pairs merge upward exactly as one record at a
        # time would merge them (the same pairs, the same arithmetic).
        rows_t: list[FloatArray] = []
        rows_v: list[FloatArray] = []
        new_t, new_v = xs, np.zeros(xs.size)
        for i in range(levels):
            held_t = self._totals[i] if i < len(self._totals) else []
            held_v = self._m2s[i] if i < len(self._m2s) else []
            row_t = np.concatenate((np.asarray(held_t, dtype=np.float64), new_t))
            row_v = np.concatenate((np.asarray(held_v, dtype=np.float64), new_v))
            rows_t.append(row_t)
            rows_v.append(row_v)
            p0 = int(at_start[i][1][0]) if i < len(at_start) else 0
            pairs = int(at_end[i][1][0]) - p0
            size = float(1 << i)
            t0, t1 = row_t[0 : 2 * pairs : 2], row_t[1 : 2 * pairs : 2]
            v0, v1 = row_v[0 : 2 * pairs : 2], row_v[1 : 2 * pairs : 2]
            d = t0 / size - t1 / size
            new_v = v0 + v1 + size * 0.5 * d * d
            new_t = t0 + t1

        base = [2 * int(at_start[i][1][0]) if i < len(at_start) else 0 for i in range(levels)]
        if checks.size:
            shape = (checks.size, levels, self.max_buckets)
            totals, m2s, sizes = np.zeros(shape), np.zeros(shape), np.zeros(shape)
            slots = np.arange(self.max_buckets)
            for i in range(min(levels, len(at_checks))):
                m, p = at_checks[i]
                lo = 2 * p - base[i]
                valid = slots < (m - 2 * p)[:, None]
                index = np.where(valid, lo[:, None] + slots, rows_t[i].size)
                row = levels - 1 - i
                totals[:, row, :] = np.append(rows_t[i], 0.0)[index]
                m2s[:, row, :] = np.append(rows_v[i], 0.0)[index]
                sizes[:, row, :] = np.where(valid, float(1 << i), 0.0)
            fired = np.flatnonzero(self._cuts(totals, m2s, sizes, checks))
            if fired.size:
                return int(checks[fired[0]]) - start, True

        self._n = end
        self._totals, self._m2s = [], []
        for i in range(levels):
            m, p = at_end[i]
            first, stop = 2 * int(p[0]) - base[i], int(m[0]) - base[i]
            self._totals.append(rows_t[i][first:stop].tolist())
            self._m2s.append(rows_v[i][first:stop].tolist())
        return xs.size, False

    # -- the test ---------------------------------------------------------------------

    def _cuts(
        self, totals: FloatArray, m2s: FloatArray, sizes: FloatArray, widths: IntArray
    ) -> NDArray[np.bool_]:
        """For each check (first axis), whether any bucket boundary is a significant cut.

        ``totals``/``m2s``/``sizes`` are (checks, levels, max_buckets), oldest level
        first, empty slots zero. Every sum is a sequential ``cumsum``, so leading or
        interleaved empty slots do not change a single bit of the result: one check
        built record by record and the same check inside a batch agree exactly.
        """
        checks = totals.shape[0]
        t = totals.reshape(checks, -1)
        s = sizes.reshape(checks, -1)
        width = widths.astype(np.float64)
        u0 = np.cumsum(t, axis=1)
        n0 = np.cumsum(s, axis=1)
        total = u0[:, -1]
        mean = total / width
        dev = t - s * mean[:, None]
        spread = m2s.reshape(checks, -1) + dev * dev / np.maximum(s, 1.0)
        variance = np.cumsum(spread, axis=1)[:, -1] / width
        n1 = width[:, None] - n0
        u1 = total[:, None] - u0
        least = float(self.min_window_length)
        valid = (n0 >= least) & (n1 >= least)
        n0 = np.where(valid, n0, least)
        n1 = np.where(valid, n1, least)
        delta_mean = u0 / n0 - u1 / n1
        m_recip = 1.0 / (n0 - least + 1.0) + 1.0 / (n1 - least + 1.0)
        # δ' from math.log: one value per check, identical in both paths.
        dprime = np.array(
            [math.log(2.0 * math.log(w) / self.delta) for w in widths.tolist()], dtype=np.float64
        )[:, None]
        epsilon = np.sqrt(2.0 * m_recip * variance[:, None] * dprime) + 2.0 / 3.0 * dprime * m_recip
        cut = valid & (np.abs(delta_mean) > epsilon)
        return np.asarray(cut.any(axis=1), dtype=np.bool_)
