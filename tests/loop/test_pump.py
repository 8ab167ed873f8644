"""The pump with in-process and file sources: micro-batches, pacing, store failures."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlgate.errors import DataError, LoopConfigError
from mlgate.loop.inbox import Inbox
from mlgate.loop.pump import Pump
from mlgate.monitoring.stream import FileSource, FrameSource
from mlgate.workspace import Workspace

KINDS: dict[str, Any] = {"x": "numeric", "colour": "categorical"}


class FakeTime:
    """A monotonic clock that moves only when the pump sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def inbox(workspace: Workspace) -> Inbox:
    return Inbox(workspace.store, "replay", clock=lambda: datetime(2026, 5, 1, tzinfo=UTC))


def table(n: int) -> pa.Table:
    labels = [i % 2 if i % 5 else None for i in range(n)]  # every fifth label never arrives
    return pa.table(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "time": [1_700_000_000 + i for i in range(n)],
            "x": [float(i) for i in range(n)],
            "colour": ["red" if i % 3 else "blue" for i in range(n)],
            "label": labels,
        }
    )


def write(path: Path, data: pa.Table) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(data, path)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(data, path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_is_replayed_into_the_inbox_at_a_chosen_rate(
    inbox: Inbox, tmp_path: Path, suffix: str
) -> None:
    path = write(tmp_path / f"day{suffix}", table(100))
    fake = FakeTime()
    pump = Pump(
        FileSource(str(path), kinds=KINDS),
        inbox,
        batch_size=500,
        max_rate=20.0,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    totals = pump.run()
    assert totals.exhausted and totals.errors == 0
    assert totals.batches == 5  # one second's worth (20 records) per read
    assert (totals.ingested.accepted, totals.ingested.labels_applied) == (100, 80)
    # paced on the pump's own clock: each read waits until the records before it fit 20/s
    # (the last wait comes before the read that finds the end of the file)
    assert fake.slept == pytest.approx([1.0] * 5)
    counts = inbox.counts()
    assert (counts.records, counts.labelled, counts.unlabelled) == (100, 80, 20)
    seen = inbox.after(0, 1000)
    assert seen.record_ids[:3] == ("r0", "r1", "r2")
    assert seen.times[0] == 1_700_000_000.0
    assert seen.columns["colour"][:3].tolist() == ["blue", "red", "red"]


def test_a_replay_again_adds_nothing(inbox: Inbox, tmp_path: Path) -> None:
    path = write(tmp_path / "day.parquet", table(50))
    Pump(FileSource(str(path), kinds=KINDS), inbox, batch_size=7).run()
    again = Pump(FileSource(str(path), kinds=KINDS), inbox, batch_size=7).run()
    assert again.ingested.accepted == 0 and again.ingested.duplicates == 50 + 40  # + labels
    assert inbox.counts().records == 50


def test_a_real_clock_paces_without_losing_records(inbox: Inbox, tmp_path: Path) -> None:
    path = write(tmp_path / "day.csv", table(30))
    totals = Pump(FileSource(str(path), kinds=KINDS), inbox, max_rate=1000.0).run()
    assert totals.ingested.accepted == 30 and inbox.counts().records == 30


def test_rows_without_ids_are_keyed_by_content(inbox: Inbox, tmp_path: Path) -> None:
    data = pa.table({"x": [1.0, 2.0, 1.0, 3.0], "colour": ["a", "b", "a", "a"]})
    path = write(tmp_path / "anonymous.csv", data)
    totals = Pump(FileSource(str(path), kinds=KINDS), inbox).run()
    assert (totals.ingested.accepted, totals.ingested.duplicates) == (3, 1)


def test_an_in_process_frame_is_pumped_in_micro_batches(inbox: Inbox) -> None:
    frame = {"x": np.arange(25, dtype=np.float64)}
    pump = Pump(FrameSource(frame, request_ids=[f"f{i}" for i in range(25)]), inbox, batch_size=10)
    steps = [pump.step() for _ in range(4)]
    assert [s.result.accepted if s.result else None for s in steps] == [10, 10, 5, None]
    assert steps[-1].exhausted and not any(s.error for s in steps)
    assert inbox.counts().records == 25


def test_an_unreadable_file_is_raised_not_retried(inbox: Inbox, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("request_id,time,x\nr1,1700000000,1.0\nr2,yesterday,2.0\n")
    pump = Pump(FileSource(str(path), kinds={"x": "numeric"}), inbox)
    with pytest.raises(DataError, match="yesterday"):
        pump.run()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_store_failure_keeps_the_batch_and_retries_it(
    inbox: Inbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A file's cursor moves on when read: the pump must keep the batch it could not store.
    path = write(tmp_path / "day.parquet", table(30))
    pump = Pump(FileSource(str(path), kinds=KINDS), inbox, batch_size=10, retry_s=0.0)
    assert pump.step().result is not None
    with inbox.store.write() as conn:  # the table disappears: every insert fails
        conn.exec_driver_sql("ALTER TABLE loop_records RENAME TO loop_records_away")
    with caplog.at_level(logging.DEBUG, logger="mlgate.loop.pump"):
        failures = [pump.step() for _ in range(3)]
        assert all(s.error and "store failed" in s.error and s.result is None for s in failures)
        with inbox.store.write() as conn:
            conn.exec_driver_sql("ALTER TABLE loop_records_away RENAME TO loop_records")
        totals = pump.run()
    assert totals.ingested.accepted == 20 and inbox.counts().records == 30
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and r.name == "mlgate.loop.pump"
    ]
    assert len(warnings) == 1 and "retrying" in warnings[0].getMessage()  # once per outage
    assert any("recovered after 3 failed tries" in r.getMessage() for r in caplog.records)


def test_run_stops_when_told(inbox: Inbox) -> None:
    stop = threading.Event()
    stop.set()
    totals = Pump(FrameSource({"x": np.zeros(3)}), inbox).run(stop=stop, until_exhausted=False)
    assert totals.batches == 0 and inbox.counts().records == 0


def test_a_live_run_waits_for_more_until_stopped(inbox: Inbox) -> None:
    stop = threading.Event()
    pump = Pump(FrameSource({"x": np.arange(3.0)}), inbox, retry_s=0.01)
    totals: list[Any] = []
    thread = threading.Thread(
        target=lambda: totals.append(pump.run(stop=stop, until_exhausted=False))
    )
    thread.start()
    deadline = time.monotonic() + 30
    while inbox.counts().records < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(30)
    assert not thread.is_alive()
    assert totals[0].ingested.accepted == 3 and totals[0].exhausted


@pytest.mark.parametrize(
    ("options", "fragment"),
    [({"batch_size": 0}, "batch_size"), ({"max_rate": 0.0}, "max_rate")],
)
def test_bad_settings_are_refused(inbox: Inbox, options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(LoopConfigError, match=fragment):
        Pump(FrameSource({"x": np.zeros(1)}), inbox, **options)
