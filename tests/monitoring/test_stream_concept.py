"""Concept drift: delayed labels joined by request id, losses into a real detector."""

from __future__ import annotations

import numpy as np
import pytest

from mlgate.errors import DataError
from mlgate.monitoring.detectors import ADWIN, HDDMA, BernoulliCusum
from mlgate.monitoring.stream import (
    ConceptMonitor,
    LabelJoin,
    Loss,
    absolute_error,
    squared_error,
    zero_one_loss,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_labels_join_predictions_in_either_order() -> None:
    clock = Clock()
    join = LabelJoin(ttl_s=100.0, clock=clock)
    assert join.add_predictions(["r1", "r2"], [1, 0]) == []
    assert join.add_labels(["r2", "r3"], [0, 1]) == [(0, 0)]  # r3 arrives before its prediction
    assert join.add_predictions(["r3"], [0]) == [(0, 1)]
    stats = join.stats
    assert (stats.joined, stats.pending_predictions, stats.pending_labels) == (2, 1, 0)


def test_a_label_after_the_ttl_is_late_and_dropped() -> None:
    clock = Clock()
    join = LabelJoin(ttl_s=10.0, clock=clock)
    join.add_predictions(["old"], ["a"])
    clock.now = 11.0
    join.add_predictions(["new"], ["b"])  # "old" expires
    assert join.add_labels(["old", "new"], ["a", "b"]) == [("b", "b")]
    stats = join.stats
    assert (stats.expired, stats.late, stats.joined, stats.pending_predictions) == (1, 1, 1, 0)


def test_unmatched_labels_expire_and_duplicates_count() -> None:
    clock = Clock()
    join = LabelJoin(ttl_s=5.0, clock=clock)
    join.add_labels(["ghost"], [1])
    join.add_predictions(["r"], [1])
    join.add_labels(["r"], [1])
    join.add_labels(["r"], [0])  # a second label for a joined request
    clock.now = 6.0
    join.add_labels(["x"], [1])
    stats = join.stats
    assert (stats.unmatched, stats.duplicates, stats.joined, stats.pending_labels) == (1, 1, 1, 1)


def test_event_times_drive_expiry_in_a_replay() -> None:
    join = LabelJoin(ttl_s=60.0, clock=lambda: 1e12)  # the clock is far ahead: ignored
    join.add_predictions(["a", "b"], [1, 1], times=[0.0, 100.0])  # "a" is 100 s older
    assert join.add_labels(["a", "b"], [1, 1], times=[101.0, 101.0]) == [(1, 1)]
    assert join.stats.late == 1


def test_memory_is_bounded() -> None:
    join = LabelJoin(ttl_s=1e9, max_pending=100, clock=Clock())
    for start in range(0, 10_000, 500):
        ids = [str(i) for i in range(start, start + 500)]
        join.add_predictions(ids, [0] * 500)
        join.add_labels([f"x{i}" for i in ids], [0] * 500)
    stats = join.stats
    assert stats.pending_predictions == 100 and stats.pending_labels == 100
    assert stats.evicted == 2 * (10_000 - 100)


def test_losses() -> None:
    assert zero_one_loss([1, "a", 2.0, True], ["1", "a", 2, 0]).tolist() == [0, 0, 0, 1]
    assert absolute_error([1.0, 3.0], [2, 3]).tolist() == [1.0, 0.0]
    assert squared_error([1.0, 3.0], [3, 3]).tolist() == [4.0, 0.0]
    with pytest.raises(DataError, match="numbers"):
        absolute_error(["a"], [1])


def _error_stream(seed: int, before: float, after: float, change: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rate = np.where(np.arange(n) < change, before, after)
    return (rng.random(n) < rate).astype(np.float64)


@pytest.mark.parametrize("seed", [1, 2])
def test_delayed_labels_reveal_an_error_step(seed: int) -> None:
    """Predictions of class 1; labels, 0..500 records late, flip to 0 more often at 4000."""
    clock = Clock()
    errors = _error_stream(seed, 0.1, 0.5, 4000, 8000)
    labels = np.where(errors == 1, 0, 1)
    monitor = ConceptMonitor(BernoulliCusum(), endpoint="e", clock=clock)
    rng = np.random.default_rng(seed)
    arrival = np.arange(8000) + rng.integers(0, 500, size=8000)
    alarms = []
    order: list[int] = []  # the records in the order their labels arrive
    for start in range(0, 8500, 250):
        clock.now = float(start)
        ids = [f"r{i}" for i in range(start, min(start + 250, 8000))]
        alarms += monitor.add_predictions(ids, [1] * len(ids))
        due = np.flatnonzero((arrival >= start) & (arrival < start + 250))
        order += due.tolist()
        alarms += monitor.add_labels([f"r{i}" for i in due], labels[due].tolist())
    assert monitor.join.stats.joined == 8000 and monitor.n_seen == 8000
    assert len(alarms) >= 1
    first = alarms[0]
    assert first.kind == "concept_drift" and first.statistic == "bernoullicusum"
    assert first.feature == "error" and first.endpoint == "e"
    # the detector sees losses in label order: the change is where the first label of a
    # record from 4000 on arrives
    change = next(position for position, record in enumerate(order) if record >= 4000)
    assert change < first.window.end <= change + 600
    assert first.reference is not None and first.reference < 0.15 < first.value


def test_update_takes_an_error_stream_directly_and_refuses_nan() -> None:
    monitor = ConceptMonitor(ADWIN())
    errors = _error_stream(3, 0.1, 0.6, 3000, 6000)
    alarms = monitor.update(errors[:3000])
    assert alarms == []
    alarms = monitor.update(errors[3000:])
    assert alarms and alarms[0].window.end > 3000 and alarms[0].window.start == 0
    with pytest.raises(DataError):
        monitor.update([0.0, float("nan")])
    assert monitor.n_seen == 6000


def test_missing_labels_are_dropped_and_counted_before_the_join() -> None:
    monitor = ConceptMonitor(ADWIN())
    monitor.add_predictions(["r1", "r2", "r3", "r4"], [1, 1, 1, 1])
    monitor.add_labels(["r1", "r2", "r3", "r4"], [1, None, float("nan"), np.float64("nan")])
    stats = monitor.join.stats
    assert stats.missing_labels == 3 and stats.joined == 1
    assert monitor.n_seen == 1 and monitor.error_rate == 0.0  # a missing label is no error
    assert stats.pending_predictions == 3  # their labels may still come
    monitor.add_labels(["r2"], [0])
    assert monitor.n_seen == 2 and monitor.error_rate == 0.5


@pytest.mark.parametrize("loss", [absolute_error, squared_error])
def test_losses_a_detector_cannot_take_are_dropped_not_raised(loss: Loss) -> None:
    monitor = ConceptMonitor(ADWIN(), loss=loss)
    monitor.add_predictions(["a", "b", "c"], [1.0, float("inf"), 2.0])
    monitor.add_labels(["a", "b", "c"], [1.5, 1.0, "two"])  # inf loss, text label
    assert monitor.n_seen == 1 and monitor.invalid_losses == 2
    assert monitor.join.stats.joined == 3
    monitor.add_predictions(["d"], [0.0])
    monitor.add_labels(["d"], [1.0])  # the monitor goes on
    assert monitor.n_seen == 2


def test_error_rate_detectors_refuse_unbounded_losses() -> None:
    for detector in (BernoulliCusum(), HDDMA()):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            ConceptMonitor(detector, loss=absolute_error)
    monitor = ConceptMonitor(HDDMA(), loss=lambda p, y: np.array([2.0] * len(p)))
    monitor.add_predictions(["a"], [1])
    assert monitor.add_labels(["a"], [1]) == [] and monitor.invalid_losses == 1
