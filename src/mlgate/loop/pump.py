"""Moving records from a stream source into the inbox: micro-batches, backpressure, retries.

One :meth:`Pump.step` is one micro-batch: ``source.read(batch_size)`` ->
:meth:`Inbox.ingest_batch` (one transaction) -> ``source.commit()``. Backpressure is the
pull itself: the next batch is read only once the last is durably in the inbox, so memory
is bounded by ``batch_size`` however fast the source fills, and a slow store slows reading
instead of queueing. ``max_rate`` (records per second) paces a replay ("replay a day of
traffic at 50 records/s"): before each read the pump sleeps until the records read so far
fit the rate, and reads at most one second's worth at a time.

Failures, none of which loses a record:

- The source fails (Redis down or restarting: a :class:`MonitoringError`): the step returns
  the error and :meth:`Pump.run` tries again after ``retry_s``. Nothing was committed, so
  Redis still holds the entries as pending and delivers them again; the inbox absorbs the
  repeats by record id. A failed commit is retried before the next read. With ``reopen``,
  the pump replaces the source with a fresh one before its next try, so a consumer whose
  read reply was lost in the crash re-reads its pending entries at once instead of on its
  next restart. A :class:`DataError` (a file that cannot be read) is raised: retrying it
  cannot help.
- The store fails while ingesting: the source is not committed and the same batch, kept
  in memory, is ingested again on the next try (a file's cursor has moved on, so
  re-reading is not an option).

An outage is logged once when it starts and once when it ends, not at every retry.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy.exc import DBAPIError

from mlgate.errors import DataError, LoopConfigError, MonitoringError, StoreError
from mlgate.loop.inbox import Inbox, IngestResult
from mlgate.monitoring.stream import StreamBatch, StreamSource

__all__ = ["Pump", "PumpStep", "PumpTotals"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PumpStep:
    """One step: what was ingested, or why nothing was (the end, an error, nothing new)."""

    result: IngestResult | None = None
    exhausted: bool = False
    error: str | None = None
    idle: bool = False


@dataclass(frozen=True)
class PumpTotals:
    batches: int
    ingested: IngestResult
    errors: int
    exhausted: bool

    def to_json(self) -> dict[str, object]:
        return {
            "batches": self.batches,
            "errors": self.errors,
            "exhausted": self.exhausted,
            **self.ingested.to_json(),
        }


class Pump:
    def __init__(
        self,
        source: StreamSource,
        inbox: Inbox,
        *,
        batch_size: int = 500,
        max_rate: float | None = None,
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        reopen: Callable[[], StreamSource] | None = None,
    ) -> None:
        if batch_size < 1:
            raise LoopConfigError(f"source.batch_size must be at least 1, got {batch_size}")
        if max_rate is not None and not (math.isfinite(max_rate) and max_rate > 0):
            raise LoopConfigError(f"source.max_rate must be a positive number, got {max_rate}")
        self.source = source
        self.inbox = inbox
        self._read_size = batch_size if max_rate is None else min(batch_size, max(1, int(max_rate)))
        self._max_rate = max_rate
        self._retry_s = retry_s
        self._clock = clock
        self._sleep = sleep
        self._reopen = reopen
        self._batch: StreamBatch | None = None  # read, not yet in the inbox
        self._uncommitted = False  # in the inbox, not yet committed at the source
        self._broken = False  # the source failed: reopen it before the next try
        self._outage: str | None = None
        self._failures = 0
        self._started: float | None = None
        self._paced = 0  # records read since _started, for max_rate

    def step(self) -> PumpStep:
        """One micro-batch; see the module docstring for what happens on failures."""
        try:
            if self._broken and self._reopen is not None:
                _close_quietly(self.source)
                self.source = self._reopen()
                self._uncommitted = False  # a fresh consumer re-reads what was not acknowledged
            self._broken = False
            if self._uncommitted:
                self.source.commit()
                self._uncommitted = False
            if self._batch is None:
                self._pace()
                batch = self.source.read(self._read_size)
                if batch is None:
                    self._recovered()
                    return PumpStep(exhausted=True)
                self._paced += batch.n_consumed
                if batch.idle:
                    self._recovered()
                    return PumpStep(idle=True)
                self._batch = batch
        except DataError:
            raise  # a file that cannot be read does not get better by retrying
        except MonitoringError as exc:
            self._broken = True
            return self._failed("source", exc)
        try:
            result = self.inbox.ingest_batch(self._batch)
        except (StoreError, DBAPIError) as exc:
            return self._failed("store", exc)
        self._batch = None
        self._uncommitted = True
        try:
            self.source.commit()
        except MonitoringError as exc:
            self._broken = True
            return replace(self._failed("source", exc), result=result)
        self._uncommitted = False
        self._recovered()
        return PumpStep(result=result)

    def run(
        self, *, stop: threading.Event | None = None, until_exhausted: bool = True
    ) -> PumpTotals:
        """Step until the source is exhausted (or, with ``until_exhausted=False``, until
        ``stop`` is set: forever without one). Errors and idle reads wait ``retry_s``."""
        batches = errors = 0
        total = IngestResult()
        exhausted = False
        while stop is None or not stop.is_set():
            step = self.step()
            if step.result is not None:
                batches += 1
                total += step.result
            exhausted = step.exhausted
            errors += step.error is not None
            if exhausted and until_exhausted:
                break
            if step.error is not None or exhausted or step.idle:
                self._wait(self._retry_s, stop)
        return PumpTotals(batches, total, errors, exhausted)

    def close(self) -> None:
        self.source.close()

    def _pace(self) -> None:
        if self._max_rate is None:
            return
        now = self._clock()
        if self._started is None:
            self._started = now
        due = self._started + self._paced / self._max_rate
        if due > now:
            self._sleep(due - now)

    def _wait(self, seconds: float, stop: threading.Event | None) -> None:
        if stop is None:
            self._sleep(seconds)
        else:
            stop.wait(seconds)

    def _failed(self, where: str, exc: Exception) -> PumpStep:
        message = f"the {where} failed: {_one_line(exc)}"
        self._failures += 1
        if self._outage is None:
            logger.warning("%s; retrying every %.1f s until it answers", message, self._retry_s)
        else:
            logger.debug("still failing: %s", message)
        self._outage = message
        return PumpStep(error=message)

    def _recovered(self) -> None:
        if self._outage is not None:
            logger.info("recovered after %d failed tries (%s)", self._failures, self._outage)
        self._outage = None
        self._failures = 0


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:500] or type(exc).__name__


def _close_quietly(source: StreamSource) -> None:
    try:
        source.close()
    except Exception as exc:  # a broken source may fail to close; it is dropped anyway
        logger.debug("closing the failed source: %s", exc)
