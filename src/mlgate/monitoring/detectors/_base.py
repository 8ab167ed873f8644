"""What every streaming drift detector shares: the port, input checks and the batch driver.

A detector sees one number per record (an error indicator, a loss, a model
output) and says, record by record, whether the stream's distribution has just
changed. Every detector here has two paths that must agree exactly:

* ``update(x)``: one record, plain Python floats, for a live stream;
* ``update_many(xs)``: a NumPy array, processed chunk by chunk with whole-array
  operations, for speed (well under a microsecond per record).

They agree bit for bit, not approximately: both paths evaluate the same
floating-point expressions in the same order (running sums are sequential
``cumsum``, first-order recurrences go through ``scipy.signal.lfilter``, whose
``y = x + a*y`` matches the Python loop exactly, and transcendental functions
of per-record data are avoided or computed by the same routine). A Hypothesis
test in ``tests/monitoring/test_detectors.py`` holds every detector to that.

After a drift every detector starts afresh on the next record, as river's do:
the alarm marks the end of the old concept, and statistics of the old concept
would only slow the next detection.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mlgate.errors import DataError

__all__ = ["Detector", "DetectorBase", "as_batch", "as_value"]

MIN_CHUNK = 256
"""First chunk after a drift: a detector restarts there, so a small chunk wastes little."""
MAX_CHUNK = 8_192
"""Chunks grow to this while nothing fires: big enough to amortise NumPy's per-call cost,
small enough that the temporary arrays stay a few hundred kilobytes."""


@runtime_checkable
class Detector(Protocol):
    """A streaming change detector over one numeric stream.

    ``update`` returns True when the record just given completes a detected
    change; ``update_many`` gives the indices (into its argument) at which
    repeated ``update`` calls would have returned True. ``reset`` forgets
    everything, including ``n_seen``.
    """

    @property
    def drift_detected(self) -> bool:
        """Whether the last record fed in raised a drift alarm."""
        ...

    @property
    def warning_detected(self) -> bool:
        """Whether the last record left the detector in its warning zone (False if it has none)."""
        ...

    @property
    def n_seen(self) -> int:
        """Records fed in since construction or the last :meth:`reset`."""
        ...

    def update(self, x: float) -> bool: ...

    def update_many(self, xs: ArrayLike) -> NDArray[np.int64]: ...

    def reset(self) -> None: ...


def as_value(x: float, *, owner: str, unit_interval: bool) -> float:
    """One record as a float, or a :class:`DataError` saying what is wrong with it."""
    try:
        value = float(x)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{owner}.update expected a number, found {x!r} ({type(x).__name__}); "
            "feed the detector the numeric error or loss of each record"
        ) from exc
    if not math.isfinite(value):
        raise DataError(
            f"{owner}.update expected a finite number, found {value}; drop or impute "
            "missing values before they reach the detector (its state is unchanged)"
        )
    if unit_interval and not 0.0 <= value <= 1.0:
        raise DataError(
            f"{owner}.update expected a value in [0, 1] (1 = error, 0 = correct), found "
            f"{value}; this detector models an error rate, use ADWIN or PageHinkley for "
            "unbounded values"
        )
    return value


def as_batch(xs: ArrayLike, *, owner: str, unit_interval: bool) -> NDArray[np.float64]:
    """A batch as a 1-D float64 array, checked whole before any record is used."""
    try:
        values = np.asarray(xs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{owner}.update_many expected a 1-D array of numbers, found values that "
            f"are not numbers ({exc}); no record of this batch was used"
        ) from exc
    if values.ndim != 1:
        raise DataError(
            f"{owner}.update_many expected a 1-D array, found shape {values.shape}; "
            "pass one stream at a time (ravel a column first)"
        )
    finite = np.isfinite(values)
    if not finite.all():
        at = int(np.flatnonzero(~finite)[0])
        raise DataError(
            f"{owner}.update_many expected finite numbers, found {values[at]} at index "
            f"{at}; drop or impute missing values first (no record of this batch was used)"
        )
    if unit_interval and values.size and (values.min() < 0.0 or values.max() > 1.0):
        at = int(np.flatnonzero((values < 0.0) | (values > 1.0))[0])
        raise DataError(
            f"{owner}.update_many expected values in [0, 1] (1 = error, 0 = correct), "
            f"found {values[at]} at index {at}; no record of this batch was used"
        )
    return values


class DetectorBase:
    """Flags, counters and the chunked driver shared by every detector.

    A subclass implements ``_step`` (one record, Python floats), ``_consume``
    (a chunk, NumPy; stops at the first drift) and ``_restart`` (fresh state
    after a drift), and sets ``_unit_interval`` if it models an error rate.
    """

    _unit_interval = False

    def __init__(self) -> None:
        self._drift = False
        self._warning = False
        self._seen = 0

    @property
    def drift_detected(self) -> bool:
        """Whether the last record fed in raised a drift alarm."""
        return self._drift

    @property
    def warning_detected(self) -> bool:
        """Whether the last record left the detector in its warning zone."""
        return self._warning

    @property
    def n_seen(self) -> int:
        """Records fed in since construction or the last :meth:`reset`."""
        return self._seen

    def reset(self) -> None:
        """Forget everything: state, flags and ``n_seen``."""
        self._drift = False
        self._warning = False
        self._seen = 0
        self._restart()

    def update(self, x: float) -> bool:
        """Feed one record; True if it completes a detected change (then the detector restarts)."""
        value = as_value(x, owner=type(self).__name__, unit_interval=self._unit_interval)
        self._seen += 1
        self._drift = self._step(value)
        if self._drift:
            self._restart()
        return self._drift

    def update_many(self, xs: ArrayLike) -> NDArray[np.int64]:
        """Feed a batch; the indices into ``xs`` where ``update`` would have returned True.

        The whole batch is checked first: a NaN, an infinity or (for error-rate
        detectors) a value outside [0, 1] raises :class:`DataError` and leaves
        the detector as it was.
        """
        values = as_batch(xs, owner=type(self).__name__, unit_interval=self._unit_interval)
        fired: list[int] = []
        pos, size = 0, MIN_CHUNK
        while pos < values.size:
            used, drift = self._consume(values[pos : pos + size])
            pos += used
            self._seen += used
            self._drift = drift
            if drift:
                fired.append(pos - 1)
                self._restart()
                size = MIN_CHUNK
            else:
                size = min(2 * size, MAX_CHUNK)
        return np.asarray(fired, dtype=np.int64)

    # -- what each detector supplies ----------------------------------------------

    def _step(self, x: float) -> bool:
        raise NotImplementedError

    def _consume(self, xs: NDArray[np.float64]) -> tuple[int, bool]:
        """Process records up to the first drift (inclusive); return (records used, drifted)."""
        raise NotImplementedError

    def _restart(self) -> None:
        raise NotImplementedError
