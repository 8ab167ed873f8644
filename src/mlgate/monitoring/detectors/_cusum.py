"""A bank of Bernoulli CUSUMs on the log-likelihood ratio, for rises in an error rate.

Page's CUSUM (Page 1954) is the optimal sequential test for a change from a
known rate ``p0`` to a known rate ``p1`` (Lorden 1971; Moustakides 1986): with
the log-likelihood ratio of one Bernoulli record ``x``,

    l(x) = x ln(p1/p0) + (1 - x) ln((1 - p1)/(1 - p0)),

``S_t = max(0, S_{t-1} + l(x_t))`` alarms when ``S_t > h``. Its delay is about
``h / KL(p1 || p0)`` records, the least any test with its false-alarm rate can
achieve. ADWIN tests every cut point with a distribution-free bound and looks
only every 32 records; on a Bernoulli stream that generality costs delay.

Neither rate is known in production, so:

* ``p0`` comes from the stream: nothing is tested for the first ``warmup``
  records after a (re)start; then, every ``clock`` records until ``reference``
  records have been seen (frozen after that), ``p0`` is the upper end of the
  one-sided Jeffreys interval for the error rate (the ``Φ(margin)`` quantile
  of Beta(errors + 1/2, successes + 1/2); about the estimate plus ``margin``
  standard errors, and still sensible at rates near 0 or 1). Erring high
  matters: a CUSUM for a small rise is very sensitive to underestimating
  ``p0`` (10% too low at p0 = 0.02 cuts the exponent of its run length from
  1 to about 0.6), while erring high only delays detection slightly.
* ``p1`` is unknown: one chart runs per odds ratio in ``odds_ratios``
  (``p1 = r p0 / (1 - p0 + r p0)``), and any chart may alarm. The chart closest
  to the actual change is near-optimal for it (a multi-chart CUSUM,
  Tartakovsky et al. 2006).

Calibration. Each chart's threshold comes from Siegmund's approximation of
the average run length to a false alarm, ``ARL0 ≈ e^h / KL(p0 || p1)``:
``h_k = ln(K · arl0 · KL(p0 || p1_k))`` for ``K`` charts, so the bank as a whole
raises about one false alarm per ``arl0`` stationary records, and small-rise
charts (whose statistic drifts down slowly) get the lower thresholds they can
afford. The approximation ignores overshoot (conservative) and the estimation
of ``p0`` (the margin covers it), so ``arl0`` was then set by simulation:
in 1,000 streams of 20,000 stationary records at each error rate 0.02, 0.05,
0.1, 0.2, 0.3 and 0.5 (120 million records), ADWIN at its defaults raised 8
false alarms; this bank raised 5 at ``arl0 = 4e6`` (9 at 3e6), and none in
200 streams each at 0.002, 0.01, 0.7, 0.9 and 0.99 (``python -m bench.detectors
--calibration-streams 1000`` repeats the first count). At that setting,
with 20,000 records before the change, the mean delay on the 0.2 → 0.5 step is
about 62 records against ADWIN's 88 (0.3 → 0.6: 72 against 99; 0.1 → 0.5: 32
against 56), and on small rises (0.1 → 0.17, 0.2 → 0.3, 0.05 → 0.1) the two
are level. The reference should hold a hundred errors or more: with fewer,
the estimate of ``p0`` is too rough for the small-rise charts.

Both paths compute each chart as ``C_t - min(0, C_1..C_t)`` with ``C`` the
running sum of ``l`` (the Lindley form of the recursion): a sequential
``cumsum`` and ``minimum.accumulate`` batched, the same additions one record at
a time. Weights and thresholds change only every ``clock`` records and come
from one Python function used by both paths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.special import betaincinv

from mlgate.monitoring.detectors._base import DetectorBase

__all__ = ["BernoulliCusum"]

FloatArray = NDArray[np.float64]
_TINY = 1e-9  # keeps p0 and 1 - p0 away from 0 whatever the data
_Weights = tuple[float, list[float], list[float], list[float]]


class BernoulliCusum(DetectorBase):
    """Multi-chart Bernoulli CUSUM for a rise in a 0/1 error rate, with a self-estimated baseline.

    ``arl0`` is the mean number of stationary records between false alarms the
    thresholds are set for. ``update(1.0)`` for an error, ``update(0.0)`` for a correct prediction
    (values in between are accepted as soft errors: the log-likelihood ratio is
    linear in ``x``). Only rises are detected: a falling error rate is not a
    reason to retrain.
    """

    _unit_interval = True

    def __init__(
        self,
        arl0: float = 4e6,
        odds_ratios: Sequence[float] = (1.5, 2.5, 4.0),
        warmup: int = 500,
        reference: int = 50_000,
        clock: int = 50,
        margin: float = 1.0,
    ) -> None:
        ratios = tuple(float(r) for r in odds_ratios)
        if arl0 <= 1.0 or not ratios or min(ratios) <= 1.0:
            raise ValueError(
                "need arl0 > 1 and at least one odds ratio, each > 1 (a rise), got "
                f"{arl0} and {odds_ratios!r}"
            )
        if warmup < 1 or clock < 1 or reference < warmup or margin < 0.0:
            raise ValueError(
                "need warmup >= 1, clock >= 1, reference >= warmup and margin >= 0, got "
                f"{warmup}, {clock}, {reference}, {margin}"
            )
        super().__init__()
        self.arl0 = arl0
        self.odds_ratios = ratios
        self.warmup = warmup
        self.reference = reference
        self.clock = clock
        self.margin = margin
        self._quantile = 0.5 * math.erfc(-margin / math.sqrt(2.0))  # Φ(margin)
        self._restart()

    def _restart(self) -> None:
        self._n = 0
        self._errors = 0.0
        self._p0 = math.nan
        k = len(self.odds_ratios)
        self._base = [0.0] * k  # l(x) = base + x * slope; zero until armed
        self._slope = [0.0] * k
        self._limit = [math.inf] * k  # h_k
        self._llr = [0.0] * k  # C_t
        self._low = [0.0] * k  # min(0, C_1..C_t)

    @property
    def baseline(self) -> float:
        """The reference error rate ``p0`` in use (NaN before ``warmup`` records)."""
        return self._p0

    @property
    def statistics(self) -> list[float]:
        """Each chart's CUSUM ``S_t``, in nats (0.0 before ``warmup`` records)."""
        return [c - low for c, low in zip(self._llr, self._low, strict=True)]

    @property
    def thresholds(self) -> list[float]:
        """Each chart's alarm threshold ``h_k``, in nats (infinite before ``warmup`` records)."""
        return list(self._limit)

    def _refresh_at(self, n: int) -> bool:
        """Whether the weights are re-estimated after the ``n``-th record."""
        return self.warmup <= n <= self.reference and (n - self.warmup) % self.clock == 0

    def _weights(self, errors: float, n: int) -> _Weights:
        # Upper end of the one-sided Jeffreys interval: Beta(errors + 1/2, successes + 1/2).
        p0 = float(betaincinv(errors + 0.5, n - errors + 0.5, self._quantile))
        p0 = min(max(p0, _TINY), 1.0 - _TINY)
        base, slope, limit = [], [], []
        charts = len(self.odds_ratios)
        for r in self.odds_ratios:
            p1 = r * p0 / (1.0 - p0 + r * p0)
            on_error, on_success = math.log(p1 / p0), math.log((1.0 - p1) / (1.0 - p0))
            base.append(on_success)
            slope.append(on_error - on_success)
            drift = -(p0 * on_error + (1.0 - p0) * on_success)  # KL(p0 || p1) > 0
            limit.append(max(1.0, math.log(charts * self.arl0 * drift)))
        return p0, base, slope, limit

    def _step(self, x: float) -> bool:
        self._n += 1
        self._errors += x
        alarm = False
        for k in range(len(self._llr)):
            self._llr[k] += self._base[k] + x * self._slope[k]
            self._low[k] = min(self._low[k], self._llr[k])
            alarm = alarm or self._llr[k] - self._low[k] > self._limit[k]
        if self._refresh_at(self._n):
            self._p0, self._base, self._slope, self._limit = self._weights(self._errors, self._n)
        return alarm

    def _consume(self, xs: FloatArray) -> tuple[int, bool]:
        start = self._n
        errors = np.cumsum(np.concatenate(([self._errors], xs)))[1:]
        # Weight refreshes inside the chunk; record t uses the latest refresh before it.
        first = max(start + 1, self.warmup)
        first += -(first - self.warmup) % self.clock
        refreshes = list(range(first, min(start + xs.size, self.reference) + 1, self.clock))
        table: list[_Weights] = [(self._p0, self._base, self._slope, self._limit)]
        table += [self._weights(float(errors[n - start - 1]), n) for n in refreshes]
        segment = np.searchsorted(
            np.asarray(refreshes, dtype=np.int64), np.arange(start + 1, start + xs.size + 1)
        )
        base = np.asarray([w[1] for w in table]).T[:, segment]  # (charts, records)
        slope = np.asarray([w[2] for w in table]).T[:, segment]
        limit = np.asarray([w[3] for w in table]).T[:, segment]
        llr = np.cumsum(np.concatenate((np.asarray(self._llr)[:, None], base + xs * slope), 1), 1)
        low = np.minimum.accumulate(
            np.concatenate((np.asarray(self._low)[:, None], llr[:, 1:]), 1), 1
        )
        alarm = (llr[:, 1:] - low[:, 1:] > limit).any(axis=0)
        fired = np.flatnonzero(alarm)
        if fired.size:
            return int(fired[0]) + 1, True
        self._n += xs.size
        self._errors = float(errors[-1])
        self._p0, self._base, self._slope, self._limit = table[-1]
        self._llr = llr[:, -1].tolist()
        self._low = low[:, -1].tolist()
        return xs.size, False
