"""The loop that drives monitors from a source: read, update, acknowledge, repeat.

One :class:`MonitorLoop` owns a source, any number of drift monitors (inputs, outputs) and
optionally a concept monitor. Each step reads one batch, gives it to every monitor,
joins its predictions and labels for the concept monitor, then commits the batch to the
source (so an acknowledged record was always processed); before the commit, alarms a sink
refused (the ledger was down) are retried. A batch is idle only when the source read
nothing at all: a batch whose rows were all skipped or rejected is progress, and the next
one is read at once. An idle live source is polled every ``poll_interval_s``.

Time windows advance on event time when records carry times: an idle poll moves each
monitor to the newest event time it has seen (its watermark), never to the wall clock, so
replaying last month's log does not close every window up to today and drop the rest of
the replay as late. Records without times are stamped, and their windows closed, by the
clock. A time more than a day beyond the clock (``FUTURE_TOLERANCE_S``; typically epoch
milliseconds where seconds are expected) cannot be an event time: the record (or label)
is rejected, counted with the other rejections, and never reaches a monitor.

Positions are not durable: nothing of the source's cursor is kept across restarts (see
:mod:`mlgate.monitoring.stream`).
The loop stops at the end of a finite source, after ``max_records``, after one pass over
what is there (``once``), when ``should_stop()`` says so, or on Ctrl-C; by default it then
judges the windows still filling (``flush``), so a short file still gets a verdict.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from mlgate.monitoring.stream.alarm import Alarm
from mlgate.monitoring.stream.concept import ConceptMonitor, is_missing
from mlgate.monitoring.stream.monitor import FUTURE_TOLERANCE_S, DriftMonitor
from mlgate.monitoring.stream.sources import StreamBatch, StreamSource

__all__ = ["FUTURE_TOLERANCE_S", "LoopStatus", "MonitorLoop"]

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
    consumed: int = 0  # rows or entries read, skipped and rejected ones included
    undelivered: int = 0  # alarms a sink still holds after the last retry
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
        batch = self._drop_future(batch)
        alarms: list[Alarm] = []
        for monitor in self.monitors:
            if batch.n_records:
                alarms += monitor.update(batch.frame, times=batch.times, versions=batch.versions)
            else:  # event time stands still when nothing arrives; only the clock moves
                alarms += monitor.advance(monitor.watermark)
        if self.concept is not None:
            alarms += self._concept(batch, self.concept)
        self.retry_sinks()
        self.source.commit()
        status = self.status
        status.records += batch.n_records
        status.consumed += batch.n_consumed
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
                if rid and not is_missing(value)
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
                if batch.idle:
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
        status.undelivered = self.retry_sinks()
        if progress is not None:
            progress(status)
        return status

    def retry_sinks(self) -> int:
        """Retry the alarms sinks hold (refused by the ledger); return how many still wait."""
        dispatches = [m.dispatch for m in self.monitors]
        if self.concept is not None:
            dispatches.append(self.concept.dispatch)
        waiting: dict[int, int] = {}  # per sink: monitors usually share one
        for dispatch in dispatches:
            for sink in dispatch.sinks:
                retry = getattr(sink, "retry", None)
                if id(sink) not in waiting and callable(retry):
                    waiting[id(sink)] = int(retry())
        return sum(waiting.values())

    @property
    def sink_failures(self) -> int:
        """Calls to sinks and subscribers that raised, over every monitor."""
        total = sum(m.dispatch.failures for m in self.monitors)
        return total + (0 if self.concept is None else self.concept.dispatch.failures)

    def _drop_future(self, batch: StreamBatch) -> StreamBatch:
        """The batch without records or labels timed beyond the clock + FUTURE_TOLERANCE_S."""
        limit = float(self._clock()) + FUTURE_TOLERANCE_S
        reasons: list[str] = []
        dropped = 0
        changes: dict[str, Any] = {}
        times = batch.times
        if times is not None and batch.n_records and bool((times > limit).any()):
            keep = np.flatnonzero(times <= limit)
            bad = batch.n_records - keep.size
            dropped += bad
            reasons.append(_future_reason(bad, "records", float(times[times > limit][0])))
            ids, versions = batch.request_ids, batch.versions
            changes.update(
                frame={name: column[keep] for name, column in batch.frame.items()},
                n_records=int(keep.size),
                times=times[keep],
                request_ids=None if ids is None else [ids[i] for i in keep.tolist()],
                versions=None if versions is None else [versions[i] for i in keep.tolist()],
            )
        labels = batch.labels
        if labels is not None and labels.times is not None and bool((labels.times > limit).any()):
            stamps = labels.times
            kept = np.flatnonzero(stamps <= limit).tolist()
            bad = len(labels.request_ids) - len(kept)
            dropped += bad
            reasons.append(_future_reason(bad, "labels", float(stamps[stamps > limit][0])))
            changes["labels"] = (
                replace(
                    labels,
                    request_ids=[labels.request_ids[i] for i in kept],
                    labels=[labels.labels[i] for i in kept],
                    times=stamps[kept],
                )
                if kept
                else None
            )
        if not dropped:
            return batch
        return replace(
            batch,
            rejected=batch.rejected + dropped,
            reasons=(*batch.reasons, *reasons),
            consumed=batch.n_consumed,
            **changes,
        )


def _future_reason(n: int, what: str, example: float) -> str:
    return (
        f"{n} {what} timed more than a day after the clock (e.g. {example:.0f}); are these "
        "epoch milliseconds where Unix seconds are expected? They were dropped"
    )
