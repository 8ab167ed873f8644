"""Where alarms and window statistics go: the ledger, Prometheus, and plain subscribers.

Every monitor hands each alarm and each window's measurements to a :class:`Dispatch`,
which calls every sink and subscriber in turn. A sink or subscriber that raises is logged
and counted, and the others still run: a broken retraining hook or a database hiccup must
not stop the monitor, nor cost the other sinks their alarm.

A ledger write that fails (the database is down, locked or full) must not lose the alarm:
:class:`LedgerSink` keeps refused alarms in a bounded queue and retries them, oldest first,
before its next write, on every window's measurements and on :meth:`LedgerSink.retry`
(which the loop calls before it commits a batch). Past ``max_pending`` the oldest is dropped
and counted as ``lost``; ``pending + lost`` is what the run could not ledger.

Ledger entries follow the ledger's conventions (:mod:`mlgate.ledger.events`): an entry
holds exact values only, so the alarm's numbers are written as the shortest decimal
strings that read back to the same float (``repr``), and the whole alarm document is
referred to by its digest (SHA-256 of its RFC 8785 form), which anyone holding the alarm's
JSON can recompute.
"""

from __future__ import annotations

import logging
from collections import deque
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
    """Appends one ``monitor.alarm`` entry per alarm to the workspace's ledger.

    An alarm the ledger refuses is queued (at most ``max_pending``) and retried before the
    next one, on :meth:`observe` and on :meth:`retry`; see the module docstring.
    """

    def __init__(self, store: Store, log: MerkleLog, actor: str, max_pending: int = 1000) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self._store = store
        self._log = log
        self._actor = actor
        self._pending: deque[Alarm] = deque()
        self.max_pending = max_pending
        self.appended: list[int] = []  # ledger indices written, for the caller's report
        self.failures = 0  # writes that failed (a retried alarm may count more than once)
        self.lost = 0  # alarms dropped from a full queue: never ledgered

    @property
    def pending(self) -> int:
        """Alarms refused by the ledger and waiting to be retried."""
        return len(self._pending)

    def emit(self, alarm: Alarm) -> None:
        """Ledger the alarm (after any queued before it); queue it and raise if that fails."""
        self._pending.append(alarm)
        if len(self._pending) > self.max_pending:
            self._pending.popleft()
            self.lost += 1
        self._drain(raise_on_failure=True)

    def observe(self, measurements: Sequence[Measurement]) -> None:
        """Window statistics are not ledgered (only alarms are events): retry queued alarms."""
        self.retry()

    def retry(self) -> int:
        """Ledger queued alarms, oldest first, until one fails; return how many still wait."""
        self._drain(raise_on_failure=False)
        return len(self._pending)

    def _drain(self, *, raise_on_failure: bool) -> None:
        while self._pending:
            alarm = self._pending[0]
            try:
                with self._store.write() as conn:
                    index = self._log.append(conn, alarm_event(alarm, self._actor))
            except Exception as exc:
                self.failures += 1
                if raise_on_failure:
                    raise
                logger.debug(  # the first refusal was logged where it happened
                    "the ledger still refuses %d alarm(s); retrying later: %s",
                    len(self._pending), _one_line(exc),
                )  # fmt: skip
                return
            self._pending.popleft()
            self.appended.append(index)


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
        except Exception as exc:  # one broken consumer must not silence the monitor or others
            self.failures += 1
            logger.error(
                "%s failed; the monitor goes on: %s: %s",
                what, type(exc).__name__, _one_line(exc), exc_info=exc,
            )  # fmt: skip


def _name(subscriber: Subscriber) -> str:
    return getattr(subscriber, "__qualname__", None) or type(subscriber).__name__


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line: the driver's own error for a SQLAlchemy one
    (without the statement and its parameters), newlines folded."""
    cause = getattr(exc, "orig", None)
    text = str(cause if isinstance(cause, BaseException) else exc)
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
