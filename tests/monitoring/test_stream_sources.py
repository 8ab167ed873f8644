"""Sources end to end: the prediction log (written by the real writer and by a real
server), feedback labels, files, and record decoding with its rejections."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlgate.config import Settings
from mlgate.errors import DataError
from mlgate.monitoring._columns import FeatureKind
from mlgate.monitoring.detectors import BernoulliCusum
from mlgate.monitoring.profile import fit_profile
from mlgate.monitoring.stream import (
    ConceptMonitor,
    CountWindow,
    DriftMonitor,
    FileSource,
    FrameSource,
    LabelJoin,
    LedgerSink,
    MonitorLoop,
    PredictionLogSource,
    TensorDecoder,
    TimeWindow,
    decode_records,
)
from mlgate.monitoring.stream._decode import Rejections
from mlgate.serving.app import ServeConfig
from mlgate.serving.feedback import FeedbackItem, record_feedback
from mlgate.serving.predlog import PredictionLogWriter, PredictionRecord
from mlgate.workspace import Workspace
from tests.models import linear_classifier, register, softmax_reference
from tests.serving.conftest import infer_body, start_server

T0 = 1_700_000_000.0

# -- decoding ----------------------------------------------------------------------------


def test_flat_records_decode_with_reserved_keys_and_rejections() -> None:
    wanted = {"x": "numeric", "colour": "categorical", "prediction": None}
    records: list[Any] = [
        {"request_id": "r1", "time": T0, "x": 1.5, "colour": "red", "version": "2"},
        {"request_id": "r2", "time": "2023-11-14T22:13:20Z", "x": None, "colour": 3},
        {"request_id": "r3", "x": "1.5"},  # text for a number: rejected
        {"request_id": "r4", "colour": 2.5},  # a float category: rejected
        {"request_id": "r5", "time": "yesterday", "x": 1.0},  # not a time: rejected
        [1, 2],  # not an object
        {"request_id": "r0", "label": 1},  # a label event, no columns
        {"label": 1},  # a label without an id: rejected
    ]
    batch = decode_records(records, wanted)
    assert batch.n_records == 2 and batch.rejected == 5 and len(batch.reasons) == 5
    assert batch.request_ids == ["r1", "r2"]
    np.testing.assert_array_equal(batch.frame["x"], [1.5, np.nan])
    assert batch.frame["colour"].tolist() == ["red", "3"]
    assert batch.times is not None and batch.times.tolist() == [T0, T0]
    assert batch.versions is None  # r2 has none
    assert batch.labels is not None and batch.labels.request_ids == ["r0"]


def test_tensors_become_columns_by_default_name_position_or_explicit_names() -> None:
    rejections = Rejections()
    default = TensorDecoder({"x[0]": "numeric", "x[1]": "numeric", "label": "categorical"})
    frame, sizes = default.decode(
        [{"x": [[1, 2], [3, 4]], "label": [0, 1]}, {"x": [[5, 6]]}], rejections
    )
    assert sizes == [2, 1] and rejections.count == 0
    assert frame["x[1]"].tolist() == [2.0, 4.0, 6.0]
    assert frame["label"].tolist() == ["0", "1", None]  # absent tensor: missing
    positional = TensorDecoder(
        {"height": "numeric", "width": "numeric"}, positional=("height", "width")
    )
    frame, _ = positional.decode([{"x": [[1, 2]]}], rejections)
    assert frame["width"].tolist() == [2.0]
    named = TensorDecoder({"w": "numeric"}, names={"x": ["h", "w"]})
    frame, _ = named.decode([{"x": [[1, 2]]}], rejections)
    assert frame["w"].tolist() == [2.0]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"x": [[[1, 2]]]}, "shape"),
        ({"x": 3.0}, "shape"),
        ({"x": [[1, 2]], "y": [1, 2]}, "rows"),
        ({"x": [["a", "b"]]}, "text"),
        (None, "not an object"),
        ({"x": [[1, 2, 3]]}, "names gives"),
    ],
)
def test_malformed_tensors_reject_the_payload(payload: Any, reason: str) -> None:
    decoder = TensorDecoder({"a": "numeric", "b": "numeric"}, names={"x": ["a", "b"]})
    rejections = Rejections()
    frame, sizes = decoder.decode([payload, {"x": [[1, 2]]}], rejections)
    assert sizes == [-1, 1] and rejections.count == 1 and reason in rejections.reasons[0]
    assert frame["a"].tolist() == [1.0]


# -- the prediction log, written by the real writer ------------------------------------


def _record(
    rid: str, x: Any, *, status: str = "ok", shadow: bool = False, t: float = T0
) -> PredictionRecord:
    return PredictionRecord(
        request_id=rid,
        endpoint="iris",
        version="1",
        route="primary",
        status=status,
        shadow=shadow,
        inputs={"x": np.asarray(x)},
        outputs={"label": np.asarray([0] * len(np.asarray(x)))},
        latency_ms=1.0,
        created_at=t,
    )


def _write(workspace: Workspace, records: list[PredictionRecord]) -> None:
    writer = PredictionLogWriter(workspace.store, batch_size=64)
    for record in records:
        assert writer.record(record)
    asyncio.run(writer.close())
    assert writer.dropped == 0


def test_prediction_log_source_reads_served_rows_and_feedback(workspace: Workspace) -> None:
    rng = np.random.default_rng(0)
    records = [_record(f"r{i}", rng.normal(size=(1 + i % 3, 2)), t=T0 + i) for i in range(30)]
    records += [
        _record("shadow", [[0.0, 0.0]], shadow=True),
        _record("failed", [[0.0, 0.0]], status="error"),
        _record("bad", [[[1.0, 2.0]]]),  # 3-D: rejected, counted
    ]
    _write(workspace, records)
    record_feedback(
        workspace.store,
        "iris",
        [FeedbackItem("r1", label=[1, 0]), FeedbackItem("r3", label=1)],
        lambda: __import__("datetime").datetime.now(__import__("datetime").UTC),
    )
    profile = fit_profile({"x[0]": rng.normal(size=500), "x[1]": rng.normal(size=500)})
    source = PredictionLogSource(
        workspace.store,
        "iris",
        inputs=TensorDecoder(profile.kinds),
        outputs=TensorDecoder({"label": None}),
        labels=True,
    )
    batch = source.read(20)
    assert batch.extra["rows"] == 20 and batch.n_records == sum(1 + i % 3 for i in range(20))
    assert batch.request_ids is not None and batch.request_ids[:4] == ["r0", "r1#0", "r1#1", "r2#0"]
    assert batch.times is not None and batch.times[0] == T0
    assert batch.labels is not None and batch.labels.request_ids == ["r1#0", "r1#1", "r3"]
    again = source.read(20)  # not committed: the same rows again
    assert again.request_ids == batch.request_ids
    source.commit()
    rest = source.read(100)
    assert rest.extra == {"rows": 13, "skipped_rows": 2, "outputs_missing_rows": 0}
    assert rest.rejected == 1 and "shape" in rest.reasons[0]
    assert rest.labels is None  # labels already read
    source.commit()
    assert source.read(100).n_records == 0


# -- a real server, its log and its feedback, monitored ------------------------------------

W = [[1.0, -1.0, 0.5], [0.5, 1.0, -1.0], [-1.0, 0.5, 1.0], [0.2, 0.1, 0.3]]
B = [0.1, 0.0, -0.1]


@pytest.fixture
def sqlite_workspace(tmp_path: Path) -> Workspace:
    settings = Settings(
        home=tmp_path / "home", store_url=f"sqlite:///{tmp_path / 'db.sqlite'}", actor="test:m5"
    )
    Workspace.init(settings)
    return Workspace.open(settings)


def test_a_served_model_is_monitored_from_its_log_and_feedback(
    tmp_path: Path, sqlite_workspace: Workspace
) -> None:
    workspace = sqlite_workspace
    register(workspace, "iris", linear_classifier(W, B), champion=True)
    rng = np.random.default_rng(7)
    reference = rng.normal(size=(4000, 4))
    probabilities, labels = softmax_reference(W, B, reference)
    inputs = fit_profile({f"f{i}": reference[:, i] for i in range(4)})
    outputs = fit_profile(
        {
            **{f"probabilities[{i}]": probabilities[:, i] for i in range(3)},
            "label": labels.astype(str).astype(object),
        }
    )
    server = start_server(workspace.settings, workspace, ServeConfig(poll_interval_s=0.1, seed=1))
    truth: dict[str, list[int]] = {}
    try:
        for i in range(80):
            x = rng.normal(size=(25, 4))
            if i >= 40:
                x[:, 0] += 1.5  # drift in feature f0 from record 1000 on
            rid = f"req-{i}"
            response = server.client.post(
                "/v2/models/iris/infer", json=infer_body(x, request_id=rid)
            )
            assert response.status_code == 200, response.text
            _, predicted = softmax_reference(W, B, x)
            wrong = rng.random(25) < (0.1 if i < 40 else 0.6)
            truth[rid] = np.where(wrong, (predicted + 1) % 3, predicted).tolist()
        feedback = [{"request_id": rid, "label": label} for rid, label in truth.items()]
        response = server.client.post("/v2/models/iris/feedback", json={"feedback": feedback})
        assert response.status_code == 200, response.text
        server.predictions("iris", 80)
    finally:
        server.stop()

    sink = LedgerSink(workspace.store, workspace.log, "test:m5")
    data = DriftMonitor(inputs, CountWindow(500), sinks=[sink], endpoint="iris")
    prediction = DriftMonitor(
        outputs, CountWindow(500), sinks=[sink], kind="prediction_drift", endpoint="iris"
    )
    concept = ConceptMonitor(
        BernoulliCusum(warmup=200), join=LabelJoin(), sinks=[sink], endpoint="iris", feature="label"
    )
    source = PredictionLogSource(
        workspace.store,
        "iris",
        inputs=TensorDecoder(inputs.kinds, positional=tuple(inputs.features)),
        outputs=TensorDecoder(outputs.kinds),
        labels=True,
    )
    loop = MonitorLoop(
        source, [data, prediction], concept, prediction_column="label", batch_records=7
    )
    status = loop.run(once=True, flush=False)
    assert status.records == 2000 and status.rejected == 0 and status.labels == 2000
    alarms = list(status.recent_alarms)
    drift = [a for a in alarms if a.kind == "data_drift"]
    assert [a.feature for a in drift] == ["f0"] and drift[0].window.start == 1000
    assert drift[0].version == "1"
    assert any(a.kind == "prediction_drift" for a in alarms)
    assert all(a.window.start >= 1000 for a in alarms if a.kind == "prediction_drift")
    assert concept.join.stats.joined == 2000
    concept_alarms = [a for a in alarms if a.kind == "concept_drift"]
    assert concept_alarms and concept_alarms[0].window.end > 1000
    assert len(sink.appended) == len(alarms)
    workspace.verify()
    workspace.close()


# -- a file ------------------------------------------------------------------------------


def test_file_source_feeds_chunks_with_times_ids_and_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.normal(size=n)
    x[2000:] += 2.0
    lines = ["request_id,time,x,label,prediction"]
    lines += [f"r{i},{T0 + i},{float(x[i])!r},{i % 2},{i % 2}" for i in range(n)]
    path = tmp_path / "stream.csv"
    path.write_text("\n".join(lines) + "\n")
    profile = fit_profile({"x": rng.normal(size=2000)})
    monitor = DriftMonitor(profile, CountWindow(1000))
    concept = ConceptMonitor(BernoulliCusum())
    loop = MonitorLoop(FileSource(str(path)), [monitor], concept, prediction_column="prediction")
    status = loop.run()
    assert status.stopped == "exhausted" and status.records == n
    alarms = list(status.recent_alarms)
    assert [(a.feature, a.window.start) for a in alarms] == [("x", 2000)]
    assert alarms[0].window.start_time == T0 + 2000 and alarms[0].window.end_time == T0 + 2999
    assert concept.join.stats.joined == n and concept.error_rate == 0.0


# -- batches of skipped rows, event-time watermarks, times from the future ---------------


def test_a_batch_of_skipped_rows_is_not_idle(workspace: Workspace) -> None:
    rng = np.random.default_rng(4)
    records = [_record(f"e{i}", [[0.0, 0.0]], status="error") for i in range(25)]
    records += [_record(f"r{i}", rng.normal(size=(1, 2)), t=T0 + i) for i in range(10)]
    _write(workspace, records)
    profile = fit_profile({"x[0]": rng.normal(size=500), "x[1]": rng.normal(size=500)})
    source = PredictionLogSource(workspace.store, "iris", inputs=TensorDecoder(profile.kinds))
    batch = source.read(10)
    assert batch.n_records == 0 and batch.consumed == 10 and not batch.idle
    monitor = DriftMonitor(profile, CountWindow(100))
    loop = MonitorLoop(source, [monitor], batch_records=10, poll_interval_s=3600.0)
    status = loop.run(once=True, flush=False)  # would sleep an hour if it thought it idle
    assert status.records == 10 and status.stopped == "once"
    assert source.read(10).idle


def test_time_windows_follow_event_time_not_the_clock(workspace: Workspace) -> None:
    """A replay of old events: an empty poll must not close the windows up to now."""
    rng = np.random.default_rng(5)
    profile = fit_profile({"x[0]": rng.normal(size=500), "x[1]": rng.normal(size=500)})
    monitor = DriftMonitor(profile, TimeWindow(60.0))
    source = PredictionLogSource(workspace.store, "iris", inputs=TensorDecoder(profile.kinds))
    loop = MonitorLoop(source, [monitor], poll_interval_s=0.0)
    # every event lies in the minute [T0 - 20, T0 + 40)
    _write(workspace, [_record(f"a{i}", rng.normal(size=(1, 2)), t=T0 - 20 + i) for i in range(30)])
    loop.run(once=True, flush=False)  # ends on an empty poll
    _write(workspace, [_record(f"b{i}", rng.normal(size=(1, 2)), t=T0 + 10 + i) for i in range(20)])
    loop.run(once=True, flush=False)
    assert monitor.late_records == 0 and monitor.window_records == 50
    assert monitor.windows_judged == 0  # the minute of events has not ended in event time


def test_times_far_beyond_the_clock_are_rejected() -> None:
    """Milliseconds where seconds are expected: counted as rejected, never counted in."""
    rng = np.random.default_rng(6)
    profile = fit_profile({"a": rng.normal(size=500)})
    monitor = DriftMonitor(profile, TimeWindow(60.0))
    times = [T0 + i for i in range(10)] + [(T0 + i) * 1000.0 for i in range(5)]
    source = FrameSource({"a": rng.normal(size=15)}, times=times)
    loop = MonitorLoop(source, [monitor])
    status = loop.run(flush=False)
    assert status.records == 10 and status.rejected == 5
    assert any("milliseconds" in reason for reason in status.recent_reasons)
    assert monitor.records_seen == 10 and monitor.late_records == 0
    with pytest.raises(DataError, match="milliseconds"):
        monitor.update({"a": np.zeros(1)}, times=[T0 * 1000.0])


# -- a file, streamed ----------------------------------------------------------------------


def test_file_source_streams_parquet_in_bounded_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    n = 200_000
    table = pa.table(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "code": rng.integers(0, 3, size=n),  # integer codes, declared categorical
            "request_id": [f"r{i}" for i in range(n)],
        }
    )
    path = tmp_path / "big.parquet"
    pq.write_table(table, path, row_group_size=10_000)
    del table
    kinds: dict[str, FeatureKind | None] = {"a": "numeric", "b": "numeric", "code": "categorical"}
    tracemalloc.start()
    try:
        source = FileSource(str(path), kinds=kinds, chunk_rows=4096)
        batch = source.read(1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert batch is not None and batch.n_records == 1000
    assert batch.frame["code"].dtype == object and set(batch.frame["code"]) <= {"0", "1", "2"}
    assert batch.request_ids is not None and batch.request_ids[999] == "r999"
    assert peak < 1_000_000  # the whole file's numbers alone would be 4.8 MB
    total = batch.n_records
    while (batch := source.read(7000)) is not None:
        total += batch.n_records
    assert total == n


def test_file_source_reads_a_csv_in_chunks_with_declared_kinds(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    lines = ["time,a,code,label"]
    lines += [f"{T0 + i},{float(rng.normal())!r},{i % 3},{i % 2}" for i in range(2500)]
    lines.append(f"{T0 + 2500},1.5,,")  # missing category and label
    path = tmp_path / "s.csv"
    path.write_text("\n".join(lines) + "\n")
    profile = fit_profile(
        {"a": rng.normal(size=300), "code": np.array(["0", "1", "2"] * 100, dtype=object)}
    )
    source = FileSource(str(path), kinds=profile.kinds, chunk_rows=333)
    codes: list[Any] = []
    times: list[float] = []
    while (batch := source.read(1000)) is not None:
        codes += batch.frame["code"].tolist()
        assert batch.times is not None
        times += batch.times.tolist()
    assert codes[:4] == ["0", "1", "2", "0"] and codes[-1] is None and len(codes) == 2501
    assert times == [T0 + i for i in range(2501)]
