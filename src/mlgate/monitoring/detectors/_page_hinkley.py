"""Page-Hinkley: a CUSUM of deviations from the running mean (Page 1954; Hinkley 1971).

With ``x̄_t`` the mean of the records since the last drift,

    U_t = α U_{t-1} + (x_t - x̄_t - δ)       (drifts down unless the mean rises)
    D_t = α D_{t-1} + (x_t - x̄_t + δ)       (drifts up unless the mean falls)

and a rise is signalled when ``U_t - min U > λ``, a fall when ``max D - D_t > λ``
(``mode`` picks one side or both). ``δ`` is the magnitude of change tolerated,
``λ`` the alarm threshold, ``α`` a forgetting factor (1 = none). Defaults are
river's (δ = 0.005, λ = 50, α = 1 - 1e-4, 30 records before the first test,
both sides), so the two can be compared on the same streams.

Batched, the running mean is a sequential ``cumsum`` divided by the count, the
two recurrences are ``scipy.signal.lfilter`` (which computes ``α·y + u`` as the
one-record path does, bit for bit), and the extremes are running
``minimum``/``maximum`` accumulations. river updates its mean incrementally and
groups ``α U + dev - δ`` differently, a rounding difference only: on the
test streams the alarms fall on the same records.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from mlgate.monitoring.detectors._base import DetectorBase

__all__ = ["PageHinkley"]

FloatArray = NDArray[np.float64]


class PageHinkley(DetectorBase):
    """Page-Hinkley test for a rise and/or fall in the mean of a numeric stream."""

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: Literal["up", "down", "both"] = "both",
    ) -> None:
        if mode not in ("up", "down", "both"):
            raise ValueError(f"mode must be 'up', 'down' or 'both', got {mode!r}")
        if min_instances < 1 or threshold <= 0.0 or delta < 0.0 or not 0.0 < alpha <= 1.0:
            raise ValueError(
                "need min_instances >= 1, threshold > 0, delta >= 0 and 0 < alpha <= 1, got "
                f"{min_instances}, {threshold}, {delta}, {alpha}"
            )
        super().__init__()
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode
        self._up_side = mode in ("up", "both")
        self._down_side = mode in ("down", "both")
        self._restart()

    def _restart(self) -> None:
        self._n = 0
        self._sum = 0.0
        self._rise = 0.0  # U_t
        self._rise_min = float("inf")
        self._fall = 0.0  # D_t
        self._fall_max = float("-inf")

    @property
    def estimation(self) -> float:
        """Mean of the records since the last drift (0.0 before any)."""
        return self._sum / self._n if self._n else 0.0

    def _step(self, x: float) -> bool:
        self._n += 1
        self._sum += x
        dev = x - self._sum / float(self._n)
        self._rise = self.alpha * self._rise + (dev - self.delta)
        self._fall = self.alpha * self._fall + (dev + self.delta)
        self._rise_min = min(self._rise_min, self._rise)
        self._fall_max = max(self._fall_max, self._fall)
        if self._n < self.min_instances:
            return False
        return (self._up_side and self._rise - self._rise_min > self.threshold) or (
            self._down_side and self._fall_max - self._fall > self.threshold
        )

    def _consume(self, xs: FloatArray) -> tuple[int, bool]:
        count = self._n + np.arange(1, xs.size + 1, dtype=np.float64)
        sums = np.cumsum(np.concatenate(([self._sum], xs)))[1:]
        dev = xs - sums / count
        coeffs = [1.0], [1.0, -self.alpha]
        rise = lfilter(*coeffs, dev - self.delta, zi=[self.alpha * self._rise])[0]
        fall = lfilter(*coeffs, dev + self.delta, zi=[self.alpha * self._fall])[0]
        rise_min = np.minimum.accumulate(np.concatenate(([self._rise_min], rise)))[1:]
        fall_max = np.maximum.accumulate(np.concatenate(([self._fall_max], fall)))[1:]
        alarm = np.zeros(xs.size, dtype=bool)
        if self._up_side:
            alarm |= rise - rise_min > self.threshold
        if self._down_side:
            alarm |= fall_max - fall > self.threshold
        alarm &= count >= self.min_instances
        fired = np.flatnonzero(alarm)
        if fired.size:
            return int(fired[0]) + 1, True
        self._n += xs.size
        self._sum = float(sums[-1])
        self._rise, self._fall = float(rise[-1]), float(fall[-1])
        self._rise_min, self._fall_max = float(rise_min[-1]), float(fall_max[-1])
        return xs.size, False
