"""HDDM_A: drift detection from Hoeffding bounds on moving averages (Frías-Blanco et al., 2015).

For an error stream in [0, 1] with running mean ``Z̄_t`` over the ``t`` records
since the last drift, HDDM_A remembers the cut point ``c`` at which
``Z̄_c + ε(c)`` was smallest, ``ε(n) = sqrt(ln(1/δ_drift) / (2n))``: the
moment the error rate looked lowest with most confidence. It signals a rise when

    Z̄_t - Z̄_c >= sqrt(m/2 · ln(2/δ)),   m = (t - c) / (c · t),

Hoeffding's inequality for the difference of the two averages (Theorem 1 and
Algorithm 1 of the paper, with the "A-test" on averages), at ``δ = 0.001`` for
a drift and ``0.005`` for a warning. With ``two_sided_test`` the mirror-image
cut (largest ``Z̄_c - ε(c)``) catches falls too. Parameters and the exact
comparisons are river's (ported from MOA), so results line up with river's
HDDMA on the same stream.

Batched, the cut point is a running argmin, found with ``np.minimum.accumulate``
(ties go to the later record, as ``>=`` does in the one-record path) and a
running maximum of the indices where the minimum was renewed.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from mlgate.monitoring.detectors._base import DetectorBase

__all__ = ["HDDMA"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


class HDDMA(DetectorBase):
    """Hoeffding-bound drift detector on averages, for 0/1 (or [0, 1]) error streams."""

    _unit_interval = True

    def __init__(
        self,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        two_sided_test: bool = False,
    ) -> None:
        if not 0.0 < drift_confidence < 1.0 or not 0.0 < warning_confidence < 1.0:
            raise ValueError(
                "drift_confidence and warning_confidence must be in (0, 1), got "
                f"{drift_confidence} and {warning_confidence}"
            )
        super().__init__()
        self.drift_confidence = drift_confidence
        self.warning_confidence = warning_confidence
        self.two_sided_test = two_sided_test
        self._bound_log = math.log(1.0 / drift_confidence)
        self._drift_log = math.log(2.0 / drift_confidence)
        self._warning_log = math.log(2.0 / warning_confidence)
        self._restart()

    def _restart(self) -> None:
        self._n = 0
        self._sum = 0.0
        # The two cut points as (records, mean, bounded mean) at the time they were taken.
        self._low = (0.0, 0.0, float("inf"))
        self._high = (0.0, 0.0, float("-inf"))

    @property
    def estimation(self) -> float:
        """Mean of the records since the last drift (0.0 before any)."""
        return self._sum / self._n if self._n else 0.0

    def _step(self, x: float) -> bool:
        self._n += 1
        self._sum += x
        n = float(self._n)
        mean = self._sum / n
        bound = math.sqrt(1.0 / (2.0 * n) * self._bound_log)
        if mean + bound <= self._low[2]:
            self._low = (n, mean, mean + bound)
        if mean - bound >= self._high[2]:
            self._high = (n, mean, mean - bound)
        rise = self._differs(n, mean - self._low[1], self._low[0], self._drift_log)
        self._warning = not rise and self._differs(
            n, mean - self._low[1], self._low[0], self._warning_log
        )
        drift = rise
        if self.two_sided_test:
            fall = self._high[1] - mean
            if self._differs(n, fall, self._high[0], self._drift_log):
                drift = True
            elif self._differs(n, fall, self._high[0], self._warning_log):
                self._warning = True
        return drift

    @staticmethod
    def _differs(n: float, gap: float, cut: float, log_term: float) -> bool:
        if cut == n:
            return False
        m = (n - cut) / cut * (1.0 / n)
        return gap >= math.sqrt(m / 2.0 * log_term)

    @staticmethod
    def _differs_many(
        n: FloatArray, gap: FloatArray, cut: FloatArray, log_term: float
    ) -> BoolArray:
        apart = cut != n
        safe_cut = np.where(apart, cut, 1.0)
        m = (n - safe_cut) / safe_cut * (1.0 / n)
        out: BoolArray = apart & (gap >= np.sqrt(np.maximum(m, 0.0) / 2.0 * log_term))
        return out

    @staticmethod
    def _cut_points(
        key: FloatArray, start: tuple[float, float, float], n: FloatArray, mean: FloatArray
    ) -> tuple[FloatArray, FloatArray, tuple[float, float, float]]:
        """Records and mean at the running best of ``key`` (minimum), ties to the latest."""
        best_before = np.minimum.accumulate(np.concatenate(([start[2]], key)))[:-1]
        renewed = key <= best_before
        at = np.maximum.accumulate(np.where(renewed, np.arange(1, key.size + 1), 0))
        cut_n = np.concatenate(([start[0]], n))[at]
        cut_mean = np.concatenate(([start[1]], mean))[at]
        last = int(at[-1])
        final = (
            start
            if last == 0
            else (float(n[last - 1]), float(mean[last - 1]), float(key[last - 1]))
        )
        return cut_n, cut_mean, final

    def _consume(self, xs: FloatArray) -> tuple[int, bool]:
        n = self._n + np.arange(1, xs.size + 1, dtype=np.float64)
        sums = np.cumsum(np.concatenate(([self._sum], xs)))[1:]
        mean = sums / n
        bound = np.sqrt(1.0 / (2.0 * n) * self._bound_log)
        low_n, low_mean, low_final = self._cut_points(mean + bound, self._low, n, mean)
        rise_gap = mean - low_mean
        drift = self._differs_many(n, rise_gap, low_n, self._drift_log)
        warning = ~drift & self._differs_many(n, rise_gap, low_n, self._warning_log)
        if self.two_sided_test:
            # The maximum of mean - bound is the minimum of its negation.
            high = (self._high[0], self._high[1], -self._high[2])
            high_n, high_mean, high_final = self._cut_points(-(mean - bound), high, n, mean)
            fall_gap = high_mean - mean
            fall = self._differs_many(n, fall_gap, high_n, self._drift_log)
            warning |= ~fall & self._differs_many(n, fall_gap, high_n, self._warning_log)
            drift |= fall
        fired = np.flatnonzero(drift)
        if fired.size:
            self._warning = bool(warning[fired[0]])
            return int(fired[0]) + 1, True
        self._warning = bool(warning[-1])
        self._n += xs.size
        self._sum = float(sums[-1])
        self._low = low_final
        if self.two_sided_test:
            self._high = (high_final[0], high_final[1], -high_final[2])
        return xs.size, False
