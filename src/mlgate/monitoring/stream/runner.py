"""The loop that drives monitors from a source: read, update, acknowledge, repeat.

One :class:`MonitorLoop` owns a source, any number of drift monitors (inputs, outputs) and
optionally a concept monitor. Each step reads one batch, gives it to every monitor,
joins its predictions and labels for the concept monitor, then commits the batch to the
source (so an acknowledged record was always processed). An idle live source is polled
every ``poll_interval_s``, and time windows are advanced meanwhile, so they close on time.
The loop stops at the end of a finite source, after ``max_records``, after one pass over
what is there (``once``), when ``should_stop()`` says so, or on Ctrl-C; by default it then
judges the windows still filling (``flush``), so a short file still gets a verdict.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mlgate.monitoring.stream.alarm import Alarm
from mlgate.monitoring.stream.concept import ConceptMonitor
from mlgate.monitoring.stream.monitor import DriftMonitor
from mlgate.monitoring.stream.sources import StreamBatch, StreamSource

__all__ = ["LoopStatus", "MonitorLoop"]

logger = logging.getLogger(__name__)

StopReason = Literal["", "exhausted", "max_records", "once", "stopped", "interrupted"]
_RECENT = 20


@dataclass
class LoopStatus:
    """What the loop has done so far (read by progress displays)."""

    records: int = 0
    batches: int = 0
    rejected: int = 0
    labels: int = 0
    alarms_total: int = 0
    recent_alarms: deque[Alarm] = field(default_factory=lambda: deque(maxlen=_RECENT))
    recent_reasons: deque[str] = field(default_factory=lambda: deque(maxlen=5))
    stopped: StopReason = ""


class MonitorLoop:
    def __init__(
        self,
        source: StreamSource,
        monitors: Sequence[DriftMonitor] = (),
        concept: ConceptMonitor | None = None,
        *,
        prediction_column: str | None = None,
        batch_records: int = 1000,
        poll_interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if concept is not None and prediction_column is None:
            raise ValueError("a concept monitor needs prediction_column: the predicted value")
        if batch_records < 1 or not poll_interval_s >= 0:
            raise ValueError("batch_records must be >= 1 and poll_interval_s >= 0")
        self.source = source
        self.monitors = list(monitors)
        self.concept = concept
        self.prediction_column = prediction_column
        self.batch_records = batch_records
        self.poll_interval_s = poll_interval_s
        self._clock = clock
        self._sleep = sleep
        self.status = LoopStatus()

    def step(self, max_records: int | None = None) -> StreamBatch | None:
        """Read and process one batch; None when the source is exhausted."""
        limit = self.batch_records if max_records is None else min(max_records, self.batch_records)
        batch = self.source.read(max(1, limit))
        if batch is None:
            return None
        alarms: list[Alarm] = []
        for monitor in self.monitors:
            if batch.n_records:
                alarms += monitor.update(batch.frame, times=batch.times, versions=batch.versions)
            else:
                alarms += monitor.advance()
        if self.concept is not None:
            alarms += self._concept(batch, self.concept)
        self.source.commit()
        status = self.status
        status.records += batch.n_records
        status.batches += 1
        status.rejected += batch.rejected
        status.recent_reasons.extend(batch.reasons)
        status.labels += 0 if batch.labels is None else len(batch.labels.request_ids)
        status.alarms_total += len(alarms)
        status.recent_alarms.extend(alarms)
        if batch.reasons:
            logger.warning("rejected %d records: %s", batch.rejected, "; ".join(batch.reasons))
        return batch

    def _concept(self, batch: StreamBatch, concept: ConceptMonitor) -> list[Alarm]:
        alarms: list[Alarm] = []
        column = batch.frame.get(self.prediction_column or "")
        if batch.request_ids is not None and column is not None and batch.n_records:
            keep = [
                i
                for i, (rid, value) in enumerate(
                    zip(batch.request_ids, column.tolist(), strict=True)
                )
                if rid and not _missing(value)
            ]
            ids = [batch.request_ids[i] for i in keep]
            values: list[Any] = [column[i] for i in keep]
            times = None if batch.times is None else batch.times[keep]
            alarms += concept.add_predictions(ids, values, times)
        if batch.labels is not None:
            labels = batch.labels
            alarms += concept.add_labels(labels.request_ids, labels.labels, labels.times)
        return alarms

    def run(
        self,
        *,
        max_records: int | None = None,
        once: bool = False,
        should_stop: Callable[[], bool] | None = None,
        progress: Callable[[LoopStatus], None] | None = None,
        flush: bool = True,
    ) -> LoopStatus:
        """Process batches until a stop condition (see the module docstring)."""
        status = self.status
        try:
            while True:
                if should_stop is not None and should_stop():
                    status.stopped = "stopped"
                    break
                remaining = None if max_records is None else max_records - status.records
                if remaining is not None and remaining <= 0:
                    status.stopped = "max_records"
                    break
                batch = self.step(remaining)
                if progress is not None:
                    progress(status)
                if batch is None:
                    status.stopped = "exhausted"
                    break
                if batch.n_records == 0 and batch.labels is None:
                    if once:
                        status.stopped = "once"
                        break
                    self._sleep(self.poll_interval_s)
        except KeyboardInterrupt:
            status.stopped = "interrupted"
        if flush:
            for monitor in self.monitors:
                final = monitor.flush()
                status.alarms_total += len(final)
                status.recent_alarms.extend(final)
        if progress is not None:
            progress(status)
        return status


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
