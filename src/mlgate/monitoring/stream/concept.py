"""Concept drift: the model's error stream, once delayed labels arrive, fed to a detector.

Labels come late (minutes to weeks) and by request id, so :class:`LabelJoin` holds the
predictions still waiting for a label in a bounded, insertion-ordered map with a time to
live. Its bounds make memory independent of traffic:

- a prediction unlabelled after ``ttl_s`` is *expired* (dropped, counted) and its id kept
  as a tombstone, so a label that arrives for it later is counted as *late* and dropped;
- a label that arrives before its prediction (logs are read at different paces) waits,
  under the same TTL, and is *unmatched* if its prediction never comes;
- beyond ``max_pending`` entries the oldest are *evicted* (counted);
- a second label for an id already joined is a *duplicate* (the first label counts);
- a missing label (None or NaN: feedback that says nothing) is counted as *missing* and
  dropped before the join, so the prediction still waits for a real label.

"Now" is the newest time seen: the records' own times when they carry them (so a replay
of an old log expires what it should), else the clock.

:class:`ConceptMonitor` turns each joined pair into a loss (0/1 error by default, or
absolute / squared error for regression) and feeds a detector from
:mod:`mlgate.monitoring.detectors` batch-wise (``update_many``). A pair whose loss the
detector cannot take (a text label for a regression loss, an infinite prediction, a value
outside [0, 1] for an error-rate detector) is dropped and counted (``invalid_losses``)
rather than raised: the join has consumed it, and an exception would lose the batch's
other pairs and, under a live loop, replay the batch forever. The error-rate detectors
(HDDM_A, the Bernoulli CUSUM) refuse the unbounded absolute and squared losses at
construction. A detection raises a
``concept_drift`` alarm whose value is the mean loss over the last ``recent`` records and
whose reference is the mean loss of the segment before them.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mlgate.errors import DataError
from mlgate.monitoring.detectors import Detector
from mlgate.monitoring.stream.alarm import Alarm, Measurement, WindowSpan
from mlgate.monitoring.stream.sinks import AlarmSink, Dispatch, Subscriber

__all__ = [
    "ConceptMonitor",
    "JoinStats",
    "LabelJoin",
    "Loss",
    "absolute_error",
    "is_missing",
    "squared_error",
    "zero_one_loss",
]

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
FloatArray = NDArray[np.float64]
Loss = Callable[[Sequence[Any], Sequence[Any]], FloatArray]


def is_missing(value: Any) -> bool:
    """None or a float NaN: a prediction or label that says nothing."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return False


def _class_key(value: Any) -> str:
    """A label as text, so that 1, 1.0, True and "1" name the same class."""
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        if math.isfinite(number) and number.is_integer():
            return str(int(number))
        return repr(number)
    return str(value)


def zero_one_loss(predictions: Sequence[Any], labels: Sequence[Any]) -> FloatArray:
    """1.0 where the predicted class differs from the label, else 0.0 (classification)."""
    return np.array(
        [float(_class_key(p) != _class_key(y)) for p, y in zip(predictions, labels, strict=True)],
        dtype=np.float64,
    )


def _numbers(values: Sequence[Any], what: str) -> FloatArray:
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"regression {what} must be numbers: {exc}") from exc
    return out


def absolute_error(predictions: Sequence[Any], labels: Sequence[Any]) -> FloatArray:
    """``|prediction - label|`` (regression)."""
    return np.abs(_numbers(predictions, "predictions") - _numbers(labels, "labels"))


def squared_error(predictions: Sequence[Any], labels: Sequence[Any]) -> FloatArray:
    """``(prediction - label)^2`` (regression)."""
    return (_numbers(predictions, "predictions") - _numbers(labels, "labels")) ** 2


@dataclass(frozen=True, slots=True)
class JoinStats:
    joined: int
    late: int
    expired: int
    unmatched: int
    evicted: int
    duplicates: int
    missing_labels: int
    pending_predictions: int
    pending_labels: int

    def to_json(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class LabelJoin:
    """Joins predictions with labels that arrive later, by request id, in bounded memory."""

    def __init__(
        self, ttl_s: float = 7 * 86_400.0, max_pending: int = 100_000, clock: Clock = time.time
    ) -> None:
        if not ttl_s > 0 or max_pending < 1:
            raise ValueError(f"ttl_s and max_pending must be positive, got {ttl_s}, {max_pending}")
        self.ttl_s = float(ttl_s)
        self.max_pending = max_pending
        self._clock = clock
        self._now = -math.inf
        self._predictions: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._labels: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._gone: OrderedDict[str, bool] = OrderedDict()  # id -> True joined / False expired
        self._counts = dict.fromkeys(
            ("joined", "late", "expired", "unmatched", "evicted", "duplicates", "missing_labels"),
            0,
        )

    @property
    def stats(self) -> JoinStats:
        return JoinStats(
            **self._counts,
            pending_predictions=len(self._predictions),
            pending_labels=len(self._labels),
        )

    def add_predictions(
        self, ids: Sequence[str], predictions: Sequence[Any], times: ArrayLike | None = None
    ) -> list[tuple[Any, Any]]:
        """Hold predictions for their labels; return (prediction, label) of labels already here."""
        stamps = self._stamps(ids, predictions, times)
        joined: list[tuple[Any, Any]] = []
        for rid, prediction, t in zip(ids, predictions, stamps, strict=True):
            early = self._labels.pop(rid, None)
            if early is not None:
                self._done(rid, joined=True)
                joined.append((prediction, early[1]))
                continue
            if rid in self._predictions:
                self._counts["duplicates"] += 1
                self._predictions.move_to_end(rid)
            self._predictions[rid] = (t, prediction)
            self._bound(self._predictions)
        self._expire()
        return joined

    def add_labels(
        self, ids: Sequence[str], labels: Sequence[Any], times: ArrayLike | None = None
    ) -> list[tuple[Any, Any]]:
        """Join labels to held predictions; return the (prediction, label) pairs made.

        A missing label (None, NaN) is counted and dropped: its prediction keeps waiting.
        """
        stamps = self._stamps(ids, labels, times)
        joined: list[tuple[Any, Any]] = []
        for rid, label, t in zip(ids, labels, stamps, strict=True):
            if is_missing(label):
                self._counts["missing_labels"] += 1
                continue
            held = self._predictions.pop(rid, None)
            if held is not None:
                self._done(rid, joined=True)
                joined.append((held[1], label))
                continue
            gone = self._gone.get(rid)
            if gone is not None:
                self._counts["duplicates" if gone else "late"] += 1
                continue
            self._labels[rid] = (t, label)
            self._bound(self._labels)
        self._expire()
        return joined

    def _stamps(
        self, ids: Sequence[str], values: Sequence[Any], times: ArrayLike | None
    ) -> list[float]:
        if len(ids) != len(values):
            raise DataError(f"{len(ids)} request ids for {len(values)} values; pass one id each")
        if times is None:
            now = float(self._clock())
            self._now = max(self._now, now)
            return [now] * len(ids)
        stamps = np.asarray(times, dtype=np.float64)
        if stamps.shape != (len(ids),) or not np.isfinite(stamps).all():
            raise DataError("times must be one finite Unix time per request id")
        if stamps.size:
            self._now = max(self._now, float(stamps.max()))
        return [float(t) for t in stamps]

    def _bound(self, held: OrderedDict[str, tuple[float, Any]]) -> None:
        while len(held) > self.max_pending:
            held.popitem(last=False)
            self._counts["evicted"] += 1

    def _done(self, rid: str, *, joined: bool) -> None:
        if joined:
            self._counts["joined"] += 1
        self._gone[rid] = joined
        self._gone.move_to_end(rid)
        while len(self._gone) > self.max_pending:
            self._gone.popitem(last=False)

    def _expire(self) -> None:
        cutoff = self._now - self.ttl_s
        while self._predictions:
            rid, (t, _) = next(iter(self._predictions.items()))
            if t >= cutoff:
                break
            self._predictions.popitem(last=False)
            self._counts["expired"] += 1
            self._done(rid, joined=False)
        while self._labels:
            _, (t, _) = next(iter(self._labels.items()))
            if t >= cutoff:
                break
            self._labels.popitem(last=False)
            self._counts["unmatched"] += 1


class ConceptMonitor:
    """Concept drift from delayed labels: loss of each joined prediction into a detector."""

    def __init__(
        self,
        detector: Detector,
        *,
        loss: Loss = zero_one_loss,
        join: LabelJoin | None = None,
        sinks: Sequence[AlarmSink] = (),
        subscribers: Sequence[Subscriber] = (),
        endpoint: str | None = None,
        version: str | None = None,
        feature: str = "error",
        clock: Clock = time.time,
        recent: int = 100,
    ) -> None:
        if recent < 1:
            raise ValueError(f"recent must be at least 1, got {recent}")
        self._unit_interval = bool(getattr(detector, "_unit_interval", False))
        if self._unit_interval and loss in (absolute_error, squared_error):
            raise ValueError(
                f"{type(detector).__name__} models an error rate and takes values in [0, 1] "
                f"only, but {loss.__name__} can exceed 1; use ADWIN or PageHinkley for "
                "regression losses, or the zero_one loss"
            )
        self.detector = detector
        self.loss = loss
        self.join = join if join is not None else LabelJoin(clock=clock)
        self.dispatch = Dispatch(sinks, subscribers)
        self.endpoint = endpoint
        self.version = version
        self.feature = feature
        self._clock = clock
        self._statistic = type(detector).__name__.lower()
        self._recent: deque[float] = deque(maxlen=recent)
        self._segment_sum = 0.0
        self._segment_n = 0
        self._segment_start = 0
        self._seen = 0
        self._alarms = 0
        self._invalid = 0

    @property
    def invalid_losses(self) -> int:
        """Joined pairs dropped because the detector cannot take their loss."""
        return self._invalid

    @property
    def n_seen(self) -> int:
        """Losses fed to the detector so far."""
        return self._seen

    @property
    def alarms_raised(self) -> int:
        return self._alarms

    @property
    def error_rate(self) -> float | None:
        """Mean loss over the last ``recent`` joined records; None before any."""
        return sum(self._recent) / len(self._recent) if self._recent else None

    def add_predictions(
        self, ids: Sequence[str], predictions: Sequence[Any], times: ArrayLike | None = None
    ) -> list[Alarm]:
        pairs = self.join.add_predictions(ids, predictions, times)
        return self._pairs(pairs)

    def add_labels(
        self, ids: Sequence[str], labels: Sequence[Any], times: ArrayLike | None = None
    ) -> list[Alarm]:
        return self._pairs(self.join.add_labels(ids, labels, times))

    def _pairs(self, pairs: list[tuple[Any, Any]]) -> list[Alarm]:
        if not pairs:
            return []
        losses = self._losses(pairs)
        usable = np.isfinite(losses)
        if self._unit_interval:
            usable &= (losses >= 0.0) & (losses <= 1.0)
        dropped = int(losses.size - np.count_nonzero(usable))
        if dropped:
            self._invalid += dropped
            logger.warning(
                "dropped %d of %d labelled predictions whose %s the %s detector cannot take "
                "(missing, not a number, infinite%s)",
                dropped, losses.size, getattr(self.loss, "__name__", "loss"),
                type(self.detector).__name__, " or outside [0, 1]" if self._unit_interval else "",
            )  # fmt: skip
            losses = losses[usable]
        return self.update(losses) if losses.size else []

    def _losses(self, pairs: list[tuple[Any, Any]]) -> FloatArray:
        """The loss of each pair; NaN for a pair the loss function cannot score."""
        predictions, labels = zip(*pairs, strict=True)
        try:
            return _as_losses(self.loss(predictions, labels), len(pairs))
        except (DataError, TypeError, ValueError):
            pass  # one bad pair spoils the batch call: score them one by one
        out = np.full(len(pairs), np.nan)
        for i, (prediction, label) in enumerate(pairs):
            try:
                out[i] = _as_losses(self.loss([prediction], [label]), 1)[0]
            except (DataError, TypeError, ValueError):
                continue
        return out

    def update(self, losses: ArrayLike) -> list[Alarm]:
        """Feed losses directly (already joined); return the alarms they raised."""
        values = np.asarray(losses, dtype=np.float64).ravel()
        fired = self.detector.update_many(values).tolist()  # DataError on NaN, leaves it as was
        alarms: list[Alarm] = []
        start = 0
        for index in fired:
            self._take(values[start : index + 1])
            alarms.append(self._alarm(self._seen))
            self._segment_sum, self._segment_n, self._segment_start = 0.0, 0, self._seen
            self._recent.clear()
            start = index + 1
        self._take(values[start:])
        rate = self.error_rate
        if rate is not None:
            self.dispatch.measurements(
                [Measurement(self.feature, "error_rate", rate, self.endpoint, "concept_drift")]
            )
        for alarm in alarms:
            self._alarms += 1
            self.dispatch.alarm(alarm)
        return alarms

    def _take(self, values: FloatArray) -> None:
        if values.size == 0:
            return
        self._recent.extend(values.tolist())
        self._segment_sum += float(values.sum())
        self._segment_n += int(values.size)
        self._seen += int(values.size)

    def _alarm(self, end: int) -> Alarm:
        recent = list(self._recent)
        value = sum(recent) / len(recent)
        before = self._segment_n - len(recent)
        reference = (self._segment_sum - sum(recent)) / before if before > 0 else None
        shown = "n/a" if reference is None else f"{reference:.3g}"
        return Alarm(
            kind="concept_drift",
            feature=self.feature,
            statistic=self._statistic,
            value=value,
            threshold=None,
            p_value=None,
            window=WindowSpan(self._alarms, self._segment_start, end, end - self._segment_start),
            endpoint=self.endpoint,
            version=self.version,
            reference=reference,
            reason=(
                f"{type(self.detector).__name__} detected a change in the {self.feature} stream "
                f"after {end - self._segment_start} records: mean over the last {len(recent)} "
                f"is {value:.3g}, before them {shown}"
            ),
            raised_at=float(self._clock()),
        )


def _as_losses(values: Any, n: int) -> FloatArray:
    losses = np.asarray(values, dtype=np.float64).ravel()
    if losses.shape != (n,):
        raise ValueError(f"the loss gave {losses.size} values for {n} pairs")
    return losses
