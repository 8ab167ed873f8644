"""DriftMonitor: the batch drift rule on windows, alarms at the right place, bad input."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from mlgate.errors import DataError
from mlgate.monitoring.drift import DriftOptions, compare_profile
from mlgate.monitoring.profile import fit_profile
from mlgate.monitoring.stream import Alarm, CountWindow, DriftMonitor, TimeWindow

SEED = 20240607


def _reference(n: int = 20_000, seed: int = SEED) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "a": rng.normal(size=n),
        "b": rng.exponential(size=n),
        "c": rng.normal(size=n),
        "colour": rng.choice(["red", "green", "blue"], p=[0.5, 0.3, 0.2], size=n).astype(object),
    }


PROFILE = fit_profile(_reference())


def _batch(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, Any]:
    return {
        "a": rng.normal(size=n) + shift,
        "b": rng.exponential(size=n),
        "c": rng.normal(size=n),
        "colour": rng.choice(["red", "green", "blue"], p=[0.5, 0.3, 0.2], size=n).astype(object),
    }


def _feed(monitor: DriftMonitor, drift_at: int, total: int, batch: int, seed: int) -> list[Alarm]:
    rng = np.random.default_rng(seed)
    alarms: list[Alarm] = []
    for start in range(0, total, batch):
        frame = _batch(rng, batch)
        drifted = np.arange(start, start + batch) >= drift_at
        frame["a"] = frame["a"] + 0.5 * drifted
        alarms += monitor.update(frame)
    return alarms


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_injected_drift_alarms_in_the_first_tumbling_window_after_it(seed: int) -> None:
    monitor = DriftMonitor(PROFILE, CountWindow(1000), clock=lambda: 1.0)
    alarms = _feed(monitor, drift_at=6000, total=12_000, batch=700, seed=seed)
    assert [(a.kind, a.feature) for a in alarms] == [("data_drift", "a")]  # once: edge-triggered
    alarm = alarms[0]
    assert (alarm.window.start, alarm.window.end, alarm.window.size) == (6000, 7000, 1000)
    assert alarm.statistic == "psi" and alarm.value >= alarm.threshold > 0
    assert alarm.p_value is not None and alarm.p_value <= 0.05
    assert monitor.windows_judged == 12


def test_a_sliding_window_alarms_within_one_window_of_the_change() -> None:
    monitor = DriftMonitor(PROFILE, CountWindow(1000, 100))
    alarms = _feed(monitor, drift_at=5000, total=9000, batch=333, seed=7)
    assert [a.feature for a in alarms] == ["a"]
    assert 5000 < alarms[0].window.end <= 6000
    assert alarms[0].window.size == 1000


def test_no_drift_no_alarm_over_many_windows() -> None:
    monitor = DriftMonitor(PROFILE, CountWindow(2000, 500))
    alarms = _feed(monitor, drift_at=10**9, total=40_000, batch=1000, seed=11)
    assert alarms == [] and monitor.windows_judged == 77


def test_window_statistics_equal_the_batch_comparison_of_the_same_records() -> None:
    rng = np.random.default_rng(5)
    frame = _batch(rng, 1500, shift=0.2)
    frame["colour"][:30] = "purple"  # one new category: the unseen bin is its own bin
    monitor = DriftMonitor(PROFILE, CountWindow(1500))
    for part in range(0, 1500, 400):
        monitor.update({k: v[part : part + 400] for k, v in frame.items()})
    assert monitor.last_window is not None
    window = monitor.last_window.drift
    batch = compare_profile(PROFILE, frame, DriftOptions(tests={n: "chi2" for n in "abc"}))
    for name in PROFILE.features:
        w, b = window.features[name], batch.features[name]
        assert (w.psi, w.kl, w.js) == (b.psi, b.kl, b.js), name
        assert w.chi2 == b.chi2 and w.p_value_adjusted == b.p_value_adjusted, name
        assert w.n_current == b.n_current and w.thresholds["psi"] == b.thresholds["psi"], name
        # Streaming has no Wasserstein (it needs the values): numeric features are gated by
        # PSI alone, so this 0.2-sigma shift (PSI < 0.1, W1 = 0.2 sigma) drifts only in batch.
        assert w.wasserstein is None and "wasserstein" not in w.thresholds
    assert not window.features["a"].drifted and batch.features["a"].drifted
    assert window.features["colour"].drifted == batch.features["colour"].drifted
    assert window.features["colour"].new_categories == ("purple",)


def test_prediction_drift_uses_a_profile_of_outputs() -> None:
    rng = np.random.default_rng(3)
    outputs = {"score": rng.beta(2, 5, size=5000), "label": rng.choice(["0", "1"], size=5000)}
    profile = fit_profile({"score": outputs["score"], "label": outputs["label"].astype(object)})
    monitor = DriftMonitor(profile, CountWindow(1000), kind="prediction_drift", endpoint="e")
    assert monitor.update({"score": rng.beta(2, 5, 1000), "label": np.full(1000, "0")})
    alarm = monitor.last_window.alarms[0]  # type: ignore[union-attr]
    assert (alarm.kind, alarm.feature, alarm.endpoint) == ("prediction_drift", "label", "e")


def test_time_windows_use_event_times_and_close_when_idle() -> None:
    now = [0.0]
    monitor = DriftMonitor(PROFILE, TimeWindow(60.0), clock=lambda: now[0])
    rng = np.random.default_rng(9)
    assert monitor.update(_batch(rng, 500), times=np.linspace(0, 59, 500)) == []
    alarms = monitor.update(_batch(rng, 500, shift=1.0), times=np.linspace(60, 119, 500))
    assert alarms == [] and monitor.windows_judged == 1  # the first minute, no drift
    now[0] = 125.0
    alarms = monitor.advance()  # nothing arrives: the clock still ends the second minute
    assert [a.feature for a in alarms] == ["a"]
    assert (alarms[0].window.start_time, alarms[0].window.end_time) == (60.0, 120.0)
    # without event times the clock stamps the records
    assert monitor.update(_batch(rng, 10)) == [] and monitor.window_records == 10


def test_versions_label_alarms() -> None:
    monitor = DriftMonitor(PROFILE, CountWindow(1000))
    rng = np.random.default_rng(4)
    frame = _batch(rng, 1000, shift=1.0)
    alarms = monitor.update(frame, versions=["2"] * 500 + ["3"] * 500)
    assert alarms and alarms[0].version == "2,3"


def test_flush_judges_the_partial_window() -> None:
    monitor = DriftMonitor(PROFILE, CountWindow(10_000))
    rng = np.random.default_rng(2)
    assert monitor.update(_batch(rng, 3000, shift=1.0)) == []
    alarms = monitor.flush()
    assert [a.feature for a in alarms] == ["a"] and alarms[0].window.size == 3000
    assert monitor.last_window is not None and monitor.last_window.final


# -- bad input ---------------------------------------------------------------------------


def _json_ok(alarms: list[Alarm]) -> None:
    for alarm in alarms:
        text = json.dumps(alarm.to_json(), allow_nan=False)  # never a NaN in an alarm
        assert Alarm.from_json(json.loads(text)).to_json() == alarm.to_json()


def test_empty_batches_change_nothing() -> None:
    monitor = DriftMonitor(PROFILE, CountWindow(100))
    assert monitor.update({}) == []
    assert monitor.update({"a": np.array([]), "colour": np.array([], dtype=object)}) == []
    assert monitor.records_seen == 0 and monitor.window_records == 0 and monitor.flush() == []


def test_an_all_nan_column_is_a_quality_alarm_not_a_drift_verdict() -> None:
    monitor = DriftMonitor(PROFILE, CountWindow(500))
    rng = np.random.default_rng(1)
    frame = _batch(rng, 500)
    frame["a"] = np.full(500, np.nan)
    alarms = monitor.update(frame)
    _json_ok(alarms)
    assert [(a.kind, a.feature, a.statistic) for a in alarms] == [("quality", "a", "missing_share")]
    assert alarms[0].value == 1.0 and alarms[0].reference == 0.0
    feature = monitor.last_window.drift.features["a"]  # type: ignore[union-attr]
    assert feature.status == "all_missing" and not feature.drifted and feature.psi is None


def test_a_missing_column_counts_as_missing() -> None:
    monitor = DriftMonitor(PROFILE, CountWindow(500))
    frame = _batch(np.random.default_rng(1), 500)
    del frame["colour"]
    alarms = monitor.update(frame)
    assert [(a.kind, a.feature) for a in alarms] == [("quality", "colour")]
    assert monitor.last_window.counts["colour"].missing == 500  # type: ignore[union-attr]


def test_records_missing_a_feature_are_missing_values() -> None:
    records = [{"a": 0.1, "b": 1.0, "c": 0.0, "colour": "red"}, {"a": 0.2, "colour": None}]
    monitor = DriftMonitor(PROFILE, CountWindow(2))
    frame = {
        name: np.array([r.get(name) for r in records], dtype=object) for name in PROFILE.features
    }
    monitor.update(frame)
    counts = monitor.last_window.counts  # type: ignore[union-attr]
    assert (counts["b"].missing, counts["colour"].missing, counts["a"].missing) == (1, 1, 0)
    assert monitor.last_window.drift.features["a"].status == "too_small"  # type: ignore[union-attr]


def test_new_categories_share_one_unseen_bin_and_can_alarm() -> None:
    monitor = DriftMonitor(PROFILE, CountWindow(1000))
    frame = _batch(np.random.default_rng(8), 1000)
    frame["colour"] = np.array([f"shade-{i % 50}" for i in range(1000)], dtype=object)
    alarms = monitor.update(frame)
    _json_ok(alarms)
    assert [a.feature for a in alarms] == ["colour"]
    counts = monitor.last_window.counts["colour"]  # type: ignore[union-attr]
    assert counts.unseen == 1000 and counts.current.tolist() == [0, 0, 0, 1000]
    feature = monitor.last_window.drift.features["colour"]  # type: ignore[union-attr]
    assert len(feature.new_categories) == 10 and feature.new_category_share == 1.0


def test_infinities_fall_in_the_outer_bins_and_are_reported() -> None:
    monitor = DriftMonitor(PROFILE, CountWindow(1000))
    frame = _batch(np.random.default_rng(6), 1000)
    frame["b"][:400] = np.inf
    frame["c"][:10] = -np.inf
    alarms = monitor.update(frame)
    _json_ok(alarms)
    assert [a.feature for a in alarms] == ["b"]
    report = monitor.last_window
    assert report is not None
    assert report.counts["b"].infinite == 400 and report.counts["c"].infinite == 10
    for feature in report.drift.features.values():
        assert feature.psi is not None and math.isfinite(feature.psi)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"a": np.zeros((3, 2))}, "1-D"),
        ({"a": np.zeros(3), "b": np.zeros(4)}, "same length"),
        ({"a": np.array(["x", "y"], dtype=object)}, "non-numeric"),
        ({"colour": np.array([1.5, 2.5])}, "dtype float64"),
        ({"colour": np.array(["red", 3], dtype=object)}, "not text"),
        ([1, 2, 3], "mapping"),
    ],
)
def test_ill_typed_batches_raise_and_change_nothing(frame: Any, message: str) -> None:
    monitor = DriftMonitor(PROFILE, CountWindow(10))
    with pytest.raises(DataError, match=message):
        monitor.update(frame)
    assert monitor.records_seen == 0 and monitor.window_records == 0


def test_bad_times_and_versions_raise() -> None:
    monitor = DriftMonitor(PROFILE, TimeWindow(10.0))
    frame = {"a": np.zeros(2)}
    with pytest.raises(DataError, match="finite"):
        monitor.update(frame, times=[1.0, math.nan])
    with pytest.raises(DataError, match="one entry per record"):
        monitor.update(frame, times=[1.0])
    with pytest.raises(DataError, match="versions"):
        monitor.update(frame, times=[1.0, 2.0], versions=["1"])
    assert monitor.records_seen == 0


def test_ks_cannot_be_asked_of_a_stream() -> None:
    with pytest.raises(ValueError, match="KS"):
        DriftMonitor(PROFILE, CountWindow(10), DriftOptions(tests={"a": "ks"}))
