"""Streaming monitors: data, prediction and concept drift on live record streams.

::

    source ──► MonitorLoop ──► DriftMonitor (inputs)   ─┐
    (prediction log,   │       DriftMonitor (outputs)  ─┼─► Alarm ──► LedgerSink
     file, Redis)      └─────► ConceptMonitor (labels) ─┘             PrometheusSink
                                                                      subscribers

- :class:`DriftMonitor` counts each record into its reference bin per feature and judges
  tumbling or sliding windows (:class:`CountWindow`, :class:`TimeWindow`) with the batch
  drift rule on the bins: PSI / JS effect sizes with sample-size-aware thresholds, the
  two-sample chi-square test, Benjamini-Hochberg across features; plus a missing-rate
  check. O(features) per record, no record kept. ``kind="prediction_drift"`` on a profile
  of model outputs monitors predictions.
- :class:`ConceptMonitor` joins delayed labels to predictions by request id
  (:class:`LabelJoin`, bounded, with a TTL) and feeds the losses to a detector (ADWIN,
  Page-Hinkley, HDDM_A or the Bernoulli CUSUM of :mod:`mlgate.monitoring.detectors`).
- Sources: :class:`PredictionLogSource` (the serving log and its feedback labels),
  :class:`FileSource` (CSV / Parquet), :class:`RedisStreamSource` (consumer groups).
- Sinks: :class:`LedgerSink` (one ``monitor.alarm`` ledger entry per alarm),
  :class:`PrometheusSink` (``mlgate_drift_statistic``, ``mlgate_drift_alarms_total``), and
  plain subscriber callables; a failing one is logged and never stops the monitor. An
  alarm the ledger refused is kept (a bounded queue) and retried on the next dispatch.

Positions are not durable: a source's cursor (the prediction log's ids, a file's row)
lives in memory and is not kept across restarts. A restarted monitor reads again from the
start (the prediction log from its first row unless started at its tail, ``--tail``; a
Redis consumer from its unacknowledged entries), and an alarm raised again on that replay
is ledgered again: a duplicate of the first run's entry, not a new drift.

Why binned tests: a window keeps counts per reference bin, not values, so KS and
Wasserstein (which need the values) are not computed; see :mod:`._judge`.
"""

from __future__ import annotations

from mlgate.monitoring.stream._decode import RecordKeys, TensorDecoder
from mlgate.monitoring.stream.alarm import ALARM_KINDS, Alarm, AlarmKind, Measurement, WindowSpan
from mlgate.monitoring.stream.concept import (
    ConceptMonitor,
    JoinStats,
    LabelJoin,
    Loss,
    absolute_error,
    squared_error,
    zero_one_loss,
)
from mlgate.monitoring.stream.file_source import FileSource
from mlgate.monitoring.stream.monitor import DriftKind, DriftMonitor, WindowReport
from mlgate.monitoring.stream.predlog_source import PredictionLogSource
from mlgate.monitoring.stream.redis_source import RedisStreamSource
from mlgate.monitoring.stream.runner import LoopStatus, MonitorLoop
from mlgate.monitoring.stream.sinks import (
    ALARM_EVENT_KIND,
    AlarmSink,
    Dispatch,
    LedgerSink,
    PrometheusSink,
    Subscriber,
    alarm_event,
)
from mlgate.monitoring.stream.sources import (
    FrameSource,
    LabelBatch,
    StreamBatch,
    StreamSource,
    decode_records,
)
from mlgate.monitoring.stream.windows import CountWindow, TimeWindow, WindowSpec

__all__ = [
    "ALARM_EVENT_KIND",
    "ALARM_KINDS",
    "Alarm",
    "AlarmKind",
    "AlarmSink",
    "ConceptMonitor",
    "CountWindow",
    "Dispatch",
    "DriftKind",
    "DriftMonitor",
    "FileSource",
    "FrameSource",
    "JoinStats",
    "LabelBatch",
    "LabelJoin",
    "LedgerSink",
    "LoopStatus",
    "Loss",
    "Measurement",
    "MonitorLoop",
    "PredictionLogSource",
    "PrometheusSink",
    "RecordKeys",
    "RedisStreamSource",
    "StreamBatch",
    "StreamSource",
    "Subscriber",
    "TensorDecoder",
    "TimeWindow",
    "WindowReport",
    "WindowSpan",
    "WindowSpec",
    "absolute_error",
    "alarm_event",
    "decode_records",
    "squared_error",
    "zero_one_loss",
]
