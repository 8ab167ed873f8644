"""Sinks: ledgered alarms that verify, Prometheus values, failures isolated."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from mlgate.ledger.events import digest_json
from mlgate.monitoring.detectors import ADWIN
from mlgate.monitoring.profile import fit_profile
from mlgate.monitoring.stream import (
    ALARM_EVENT_KIND,
    Alarm,
    ConceptMonitor,
    CountWindow,
    DriftMonitor,
    LedgerSink,
    Measurement,
    PrometheusSink,
)
from mlgate.workspace import Workspace

RNG = np.random.default_rng(42)
PROFILE = fit_profile({"a": RNG.normal(size=5000), "b": RNG.normal(size=5000)})


def _drifted(n: int = 1000) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    return {"a": rng.normal(size=n) + 1.0, "b": rng.normal(size=n)}


def test_ledger_sink_appends_verifiable_entries(workspace: Workspace) -> None:
    sink = LedgerSink(workspace.store, workspace.log, "test:monitor")
    monitor = DriftMonitor(PROFILE, CountWindow(1000), sinks=[sink], endpoint="iris", version="2")
    alarms = monitor.update(_drifted())
    assert len(alarms) == 1 and len(sink.appended) == 1
    alarm = alarms[0]
    with workspace.store.read() as conn:
        document = workspace.log.entry(conn, sink.appended[0]).document()
    assert document["kind"] == ALARM_EVENT_KIND and document["actor"] == "test:monitor"
    assert document["subject"] == {
        "endpoint": "iris",
        "version": "2",
        "feature": "a",
        "alarm": "data_drift",
    }
    assert document["digests"] == {"alarm": digest_json(alarm.to_json())}
    attributes = document["attributes"]
    assert float(attributes["value"]) == alarm.value  # exact: repr round-trips
    assert float(attributes["threshold"]) == alarm.threshold
    assert float(attributes["p_value"]) == alarm.p_value
    assert attributes["statistic"] == "psi"
    assert (attributes["window_start"], attributes["window_end"]) == (0, 1000)
    report = workspace.verify()
    assert report.size == sink.appended[0] + 1


def test_concept_alarms_are_ledgered_too(workspace: Workspace) -> None:
    sink = LedgerSink(workspace.store, workspace.log, "test:monitor")
    monitor = ConceptMonitor(ADWIN(), sinks=[sink], endpoint="iris")
    rng = np.random.default_rng(0)
    errors = (rng.random(6000) < np.where(np.arange(6000) < 3000, 0.05, 0.6)).astype(float)
    alarms = monitor.update(errors)
    assert alarms and len(sink.appended) == len(alarms)
    with workspace.store.read() as conn:
        attributes = workspace.log.entry(conn, sink.appended[0]).document()["attributes"]
    assert attributes["statistic"] == "adwin" and attributes["threshold"] is None
    workspace.verify()


def test_prometheus_sink_exposes_the_last_window_and_counts_alarms() -> None:
    registry = CollectorRegistry()
    monitor = DriftMonitor(
        PROFILE, CountWindow(1000), sinks=[PrometheusSink(registry)], endpoint="iris"
    )
    monitor.update(_drifted())
    report = monitor.last_window
    assert report is not None
    for name in ("a", "b"):
        f = report.drift.features[name]
        labels = {"endpoint": "iris", "feature": name}
        assert (
            registry.get_sample_value("mlgate_drift_statistic", {**labels, "statistic": "psi"})
            == f.psi
        )
        assert (
            registry.get_sample_value("mlgate_drift_statistic", {**labels, "statistic": "js"})
            == f.js
        )
        assert (
            registry.get_sample_value("mlgate_drift_statistic", {**labels, "statistic": "p_value"})
            == f.p_value_adjusted
        )
        assert (
            registry.get_sample_value(
                "mlgate_drift_statistic", {**labels, "statistic": "missing_share"}
            )
            == 0.0
        )
    alarms = {"endpoint": "iris", "kind": "data_drift"}
    assert registry.get_sample_value("mlgate_drift_alarms_total", {**alarms, "feature": "a"}) == 1.0
    assert (
        registry.get_sample_value("mlgate_drift_alarms_total", {**alarms, "feature": "b"}) is None
    )


class BrokenSink:
    def emit(self, alarm: Alarm) -> None:
        raise OSError("disk full")

    def observe(self, measurements: Sequence[Measurement]) -> None:
        raise OSError("disk full")


def test_a_failing_subscriber_or_sink_is_logged_and_isolated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    received: list[Alarm] = []

    def broken(alarm: Alarm) -> None:
        raise RuntimeError("the retraining hook is down")

    registry = CollectorRegistry()
    monitor = DriftMonitor(
        PROFILE,
        CountWindow(1000),
        sinks=[BrokenSink(), PrometheusSink(registry)],
        subscribers=[broken, received.append],
    )
    with caplog.at_level(logging.ERROR, logger="mlgate.monitoring.stream.sinks"):
        alarms = monitor.update(_drifted())
        alarms += monitor.update(_drifted())  # the monitor goes on
    assert len(alarms) == 1 and received == alarms
    assert monitor.windows_judged == 2
    assert monitor.dispatch.failures == 2 + 1 + 1  # observe x2, emit, subscriber
    assert (
        registry.get_sample_value(
            "mlgate_drift_alarms_total", {"endpoint": "", "kind": "data_drift", "feature": "a"}
        )
        == 1.0
    )
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "subscriber" in messages and "BrokenSink" in messages


def _ledger_offline(workspace: Workspace, offline: bool) -> None:
    """Really break (and mend) the ledger: its entries table goes away and comes back."""
    names = ("ledger_entries", "ledger_entries_away")
    old, new = names if offline else names[::-1]
    with workspace.store.write() as conn:
        conn.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))


def test_alarms_the_ledger_refused_are_kept_and_retried(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    sink = LedgerSink(workspace.store, workspace.log, "test:monitor", max_pending=1)
    monitor = DriftMonitor(PROFILE, CountWindow(1000), sinks=[sink], endpoint="iris")
    _ledger_offline(workspace, True)
    with caplog.at_level(logging.ERROR, logger="mlgate.monitoring.stream.sinks"):
        alarms = monitor.update(_drifted())
    assert len(alarms) == 1 and sink.appended == [] and sink.pending == 1
    assert sink.failures == 1 and monitor.dispatch.failures == 1
    assert sink.retry() == 1  # still offline: kept
    _ledger_offline(workspace, False)
    assert sink.retry() == 0 and len(sink.appended) == 1 and sink.lost == 0
    with workspace.store.read() as conn:
        document = workspace.log.entry(conn, sink.appended[0]).document()
    assert document["digests"] == {"alarm": digest_json(alarms[0].to_json())}
    workspace.verify()


def test_the_retry_queue_is_bounded_and_counts_what_it_lost(workspace: Workspace) -> None:
    sink = LedgerSink(workspace.store, workspace.log, "test:monitor", max_pending=1)
    monitor = ConceptMonitor(ADWIN(), sinks=[sink], endpoint="iris")
    rng = np.random.default_rng(0)
    _ledger_offline(workspace, True)
    steps = [0.05, 0.6, 0.05, 0.6]
    errors = np.concatenate([(rng.random(3000) < p).astype(float) for p in steps])
    alarms = monitor.update(errors)
    assert len(alarms) >= 2 and sink.pending == 1 and sink.lost == len(alarms) - 1
    _ledger_offline(workspace, False)
    monitor.update(np.zeros(10))  # the next dispatch retries first
    assert sink.pending == 0 and len(sink.appended) == 1
