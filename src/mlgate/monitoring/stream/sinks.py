"""Where alarms and window statistics go: the ledger, Prometheus, and plain subscribers.

Every monitor hands each alarm and each window's measurements to a :class:`Dispatch`,
which calls every sink and subscriber in turn. A sink or subscriber that raises is logged
and counted, and the others still run: a broken retraining hook or a database hiccup must
not stop the monitor, nor cost the other sinks their alarm.

Ledger entries follow the ledger's conventions (:mod:`mlgate.ledger.events`): an entry
holds exact values only, so the alarm's numbers are written as the shortest decimal
strings that read back to the same float (``repr``), and the whole alarm document is
referred to by its digest (SHA-256 of its RFC 8785 form), which anyone holding the alarm's
JSON can recompute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Gauge

from mlgate.ledger.events import LedgerEvent, digest_json
from mlgate.ledger.log import MerkleLog
from mlgate.monitoring.stream.alarm import Alarm, Measurement
from mlgate.store.engine import Store

__all__ = [
    "ALARM_EVENT_KIND",
    "AlarmSink",
    "Dispatch",
    "LedgerSink",
    "PrometheusSink",
    "Subscriber",
    "alarm_event",
]

logger = logging.getLogger(__name__)

ALARM_EVENT_KIND = "monitor.alarm"

Subscriber = Callable[[Alarm], None]
_T = TypeVar("_T")


@runtime_checkable
class AlarmSink(Protocol):
    """A destination for alarms (``emit``) and for every window's statistics (``observe``)."""

    def emit(self, alarm: Alarm) -> None: ...

    def observe(self, measurements: Sequence[Measurement]) -> None: ...


def _exact(value: float | None) -> str | None:
    """A float as the shortest string that reads back to it; None stays None."""
    return None if value is None else repr(float(value))


def alarm_event(alarm: Alarm, actor: str) -> LedgerEvent:
    """The ledger event of one alarm: its identity, its numbers as exact text, its digest."""
    window = alarm.window
    return LedgerEvent(
        kind=ALARM_EVENT_KIND,
        actor=actor,
        subject={
            "endpoint": alarm.endpoint,
            "version": alarm.version,
            "feature": alarm.feature,
            "alarm": alarm.kind,
        },
        digests={"alarm": digest_json(alarm.to_json())},
        attributes={
            "statistic": alarm.statistic,
            "value": _exact(alarm.value),
            "threshold": _exact(alarm.threshold),
            "p_value": _exact(alarm.p_value),
            "window_index": window.index,
            "window_start": window.start,
            "window_end": window.end,
            "window_size": window.size,
        },
    )


class LedgerSink:
    """Appends one ``monitor.alarm`` entry per alarm to the workspace's ledger."""

    def __init__(self, store: Store, log: MerkleLog, actor: str) -> None:
        self._store = store
        self._log = log
        self._actor = actor
        self.appended: list[int] = []  # ledger indices written, for the caller's report

    def emit(self, alarm: Alarm) -> None:
        event = alarm_event(alarm, self._actor)
        with self._store.write() as conn:
            index = self._log.append(conn, event)
        self.appended.append(index)

    def observe(self, measurements: Sequence[Measurement]) -> None:
        """Window statistics are not ledgered: only alarms are events."""


class PrometheusSink:
    """``mlgate_drift_statistic`` gauges per window and ``mlgate_drift_alarms_total``.

    Labels are bounded by the profile (endpoint, feature, statistic), never by traffic. The
    sink uses its own registry unless given one, so two monitors never collide on the
    process-wide default.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._statistic = Gauge(
            "mlgate_drift_statistic",
            "Last value of a drift statistic per feature (psi, js, kl, chi2, p_value, "
            "missing_share, error_rate)",
            ["endpoint", "feature", "statistic"],
            registry=self.registry,
        )
        self._alarms = Counter(
            "mlgate_drift_alarms",
            "Alarms raised by streaming monitors",
            ["endpoint", "kind", "feature"],
            registry=self.registry,
        )

    def emit(self, alarm: Alarm) -> None:
        self._alarms.labels(alarm.endpoint or "", alarm.kind, alarm.feature).inc()

    def observe(self, measurements: Sequence[Measurement]) -> None:
        for m in measurements:
            self._statistic.labels(m.endpoint or "", m.feature, m.statistic).set(m.value)


class Dispatch:
    """Calls every sink and subscriber, isolating each failure (logged and counted)."""

    def __init__(self, sinks: Sequence[AlarmSink] = (), subscribers: Sequence[Subscriber] = ()):
        self.sinks = list(sinks)
        self.subscribers = list(subscribers)
        self.failures = 0

    def alarm(self, alarm: Alarm) -> None:
        for sink in self.sinks:
            self._call(sink.emit, alarm, f"sink {type(sink).__name__}")
        for subscriber in self.subscribers:
            self._call(subscriber, alarm, f"subscriber {_name(subscriber)}")

    def measurements(self, measurements: Sequence[Measurement]) -> None:
        if not measurements:
            return
        for sink in self.sinks:
            self._call(sink.observe, measurements, f"sink {type(sink).__name__}")

    def _call(self, target: Callable[[_T], None], arg: _T, what: str) -> None:
        try:
            target(arg)
        except Exception:  # one broken consumer must not silence the monitor or the others
            self.failures += 1
            logger.exception("%s failed; the monitor goes on", what)


def _name(subscriber: Subscriber) -> str:
    return getattr(subscriber, "__qualname__", None) or type(subscriber).__name__
