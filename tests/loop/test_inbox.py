"""The inbox on SQLite and PostgreSQL: once per record id, labels in either order, windows."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from mlgate.errors import DataError, LoopConfigError
from mlgate.loop.inbox import MAX_BATCH, Inbox, IngestResult
from mlgate.loop.window import WindowPolicy
from mlgate.monitoring.stream import FrameSource
from mlgate.store.schema import loop_records
from mlgate.workspace import Workspace

WANTED: dict[str, Any] = {"x": "numeric", "colour": "categorical"}
START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def inbox(workspace: Workspace, clock: Clock) -> Inbox:
    return Inbox(workspace.store, "churn", clock=clock)


def record(i: int, **extra: Any) -> dict[str, Any]:
    return {"request_id": f"r{i}", "x": float(i), "colour": "red" if i % 2 else "blue", **extra}


def stored_rows(inbox: Inbox) -> list[Any]:
    query = sa.select(loop_records).where(loop_records.c.loop == inbox.loop)
    with inbox.store.read() as conn:
        return list(conn.execute(query.order_by(loop_records.c.seq)))


def test_a_record_is_stored_once_however_often_it_comes(inbox: Inbox) -> None:
    first = inbox.ingest([record(i) for i in range(5)], WANTED)
    assert first == IngestResult(accepted=5)
    again = inbox.ingest([record(i) for i in range(3, 8)], WANTED)
    assert (again.accepted, again.duplicates) == (3, 2)
    within = inbox.ingest([record(9), record(9), record(9, x=99.0)], WANTED)
    assert (within.accepted, within.duplicates) == (1, 2)
    assert inbox.counts().records == 9
    rows = {r.record_id: r for r in stored_rows(inbox)}
    assert len(rows) == 9
    assert rows["r9"].features == {"x": 9.0, "colour": "red"}  # the first write wins


def test_records_without_an_id_are_keyed_by_their_content(inbox: Inbox) -> None:
    records = [{"x": 1, "colour": "red"}, {"x": 1.0, "colour": "red"}, {"colour": "red", "x": 2}]
    result = inbox.ingest(records, WANTED)
    assert (result.accepted, result.duplicates) == (2, 1)
    ids = [r.record_id for r in stored_rows(inbox)]
    assert all(rid.startswith("sha256:") and len(rid) == 71 for rid in ids)
    # the same values by another path (a frame, as a file or Redis gives them) collapse too
    frame = {"x": np.array([1.0]), "colour": np.array(["red"], dtype=object)}
    batch = FrameSource(frame).read(10)
    assert batch is not None
    assert inbox.ingest_batch(batch).duplicates == 1
    # a missing value is not part of the identity: {"x": 3} and {"x": 3, "colour": null}
    assert inbox.ingest([{"x": 3}, {"x": 3, "colour": None}], WANTED).accepted == 1


def test_a_label_for_a_known_record_is_set_once_and_never_flipped(inbox: Inbox) -> None:
    inbox.ingest([record(1), record(2)], WANTED)
    applied = inbox.ingest([{"request_id": "r1", "label": 1}], WANTED)
    assert (applied.labels_applied, applied.labels_waiting) == (1, 0)
    same = inbox.ingest([{"request_id": "r1", "label": 1.0}], WANTED)
    assert (same.duplicates, same.rejected) == (1, 0)
    flipped = inbox.ingest([{"request_id": "r1", "label": 0}], WANTED)
    assert (flipped.rejected, flipped.labels_applied) == (1, 0)
    assert "never overwritten" in flipped.reasons[0] and "'r1'" in flipped.reasons[0]
    assert inbox.ingest([{"request_id": "r1", "label": "1"}], WANTED).rejected == 1
    assert inbox.ingest([{"request_id": "r1", "label": True}], WANTED).rejected == 1
    assert inbox.label_of(["r1", "r2", "nope"]) == {"r1": 1}
    # two different labels in one batch: the first stands, the second is refused
    mixed = inbox.ingest(
        [{"request_id": "r2", "label": 0}, {"request_id": "r2", "label": 1}], WANTED
    )
    assert (mixed.labels_applied, mixed.rejected) == (1, 1)
    assert inbox.label_of(["r2"]) == {"r2": 0}


def test_a_label_before_its_record_waits_and_is_joined(inbox: Inbox) -> None:
    inbox.ingest([record(1)], WANTED)
    early = inbox.ingest([{"request_id": "r2", "label": 1, "time": 1.7e9}], WANTED)
    assert (early.labels_waiting, early.labels_applied) == (1, 0)
    assert inbox.counts().to_json() == {
        "records": 1,
        "labelled": 0,
        "unlabelled": 1,
        "label_only": 1,
        "quarantined": 0,
    }
    assert inbox.label_of(["r2"]) == {"r2": 1}
    seen = inbox.after(0, 10)
    assert seen.record_ids == ("r1",)
    tail = inbox.tail()
    late = inbox.ingest([record(2)], WANTED)
    assert (late.accepted, late.labels_applied) == (1, 1)
    # the joined row is new to readers: it comes after everything read so far
    fresh = inbox.after(seen.last_seq, 10)
    assert fresh.record_ids == ("r2",) and fresh.labels.tolist() == [1]
    assert int(fresh.seqs[0]) > tail
    assert inbox.counts().to_json() == {
        "records": 2,
        "labelled": 1,
        "unlabelled": 1,
        "label_only": 0,
        "quarantined": 0,
    }
    rows = stored_rows(inbox)
    assert [(r.record_id, r.label) for r in rows] == [("r1", None), ("r2", 1)]
    # a repeated label for the joined record is a duplicate; the waiting one was not lost
    assert inbox.ingest([{"request_id": "r2", "label": 1}], WANTED).duplicates == 1


def test_a_waiting_label_refuses_a_different_one(inbox: Inbox) -> None:
    inbox.ingest([{"request_id": "r5", "label": "spam"}], WANTED)
    assert inbox.ingest([{"request_id": "r5", "label": "spam"}], WANTED).duplicates == 1
    assert inbox.ingest([{"request_id": "r5", "label": "ham"}], WANTED).rejected == 1
    joined = inbox.ingest([record(5, label="ham")], WANTED)  # record carrying a flipped label
    assert (joined.accepted, joined.rejected) == (1, 1)
    assert inbox.label_of(["r5"]) == {"r5": "spam"}


def test_a_record_may_carry_its_label(inbox: Inbox) -> None:
    result = inbox.ingest([record(1, label=0), record(2)], WANTED)
    assert (result.accepted, result.labels_applied) == (2, 1)
    again = inbox.ingest([record(1, label=0), record(2, label=1)], WANTED)
    assert (again.accepted, again.duplicates, again.labels_applied) == (0, 3, 1)
    # a labelled record without a request_id is keyed by its features, label included
    keyed = inbox.ingest([{"x": 7.0, "label": 1}, {"x": 7.0, "label": 1}], WANTED)
    assert (keyed.accepted, keyed.labels_applied, keyed.duplicates) == (1, 1, 2)


def test_labels_that_never_arrive_leave_records_out_of_training(inbox: Inbox) -> None:
    inbox.ingest([record(i, label=i % 2) if i < 4 else record(i) for i in range(10)], WANTED)
    counts = inbox.counts()
    assert (counts.records, counts.labelled, counts.unlabelled) == (10, 4, 6)
    frame = inbox.labelled(WindowPolicy(recent=100), ["x"])
    assert frame.record_ids == ("r0", "r1", "r2", "r3")


def test_malformed_input_is_counted_with_reasons(inbox: Inbox) -> None:
    records: list[Any] = [
        "not an object",
        {"request_id": "r1", "x": "high"},  # text for a number
        {"request_id": "r2", "x": 1.0, "time": "yesterday"},
        {"request_id": "r3", "x": 1.0, "time": 1e15},  # beyond the year 9999
        {"request_id": "r" * 129, "x": 1.0},
        {"label": 1},  # a label for nobody
        {"request_id": "r4", "label": [1, 2]},
        record(5),
    ]
    result = inbox.ingest(records, WANTED)
    assert (result.accepted, result.rejected) == (1, 7)
    assert len(result.reasons) == 5  # the first few reasons, as decode_records keeps them
    assert inbox.counts().records == 1


def test_event_times_are_the_records_or_the_ingestion_time(inbox: Inbox, clock: Clock) -> None:
    inbox.ingest(
        [
            record(1, time=1_700_000_000.5),
            record(2, time="2026-04-01T00:00:00Z"),
            record(3),
        ],
        WANTED,
    )
    rows = {r.record_id: r for r in stored_rows(inbox)}
    assert rows["r1"].event_time == "2023-11-14T22:13:20.500000Z"
    assert rows["r2"].event_time == "2026-04-01T00:00:00.000000Z"
    assert rows["r3"].event_time == rows["r3"].ingested_at == "2026-05-01T12:00:00.000000Z"
    times = inbox.after(0, 10).times
    april = datetime(2026, 4, 1, tzinfo=UTC).timestamp()
    assert times.tolist() == [1_700_000_000.5, april, START.timestamp()]


def test_nan_and_infinity_are_stored_as_missing(inbox: Inbox) -> None:
    frame = {
        "x": np.array([1.0, math.nan, math.inf, -math.inf]),
        "colour": np.array(["red", None, "blue", "red"], dtype=object),
    }
    batch = FrameSource(frame, request_ids=["a", "b", "c", "d"]).read(10)
    assert batch is not None
    assert inbox.ingest_batch(batch).accepted == 4
    assert [r.features["x"] for r in stored_rows(inbox)] == [1.0, None, None, None]
    seen = inbox.after(0, 10)
    assert seen.columns["x"].dtype == np.float64
    assert np.isnan(seen.columns["x"][1:]).all()
    assert seen.columns["colour"].tolist() == ["red", None, "blue", "red"]


def test_values_that_are_not_json_are_rejected(inbox: Inbox) -> None:
    odd = np.empty(2, dtype=object)
    odd[:] = [{1, 2}, [1, 2]]
    batch = FrameSource({"blob": odd}, request_ids=["a", "b"]).read(10)
    assert batch is not None
    result = inbox.ingest_batch(batch)
    assert (result.accepted, result.rejected) == (1, 1)
    assert "not a JSON value" in result.reasons[0]


def test_after_reads_in_order_with_a_limit(inbox: Inbox) -> None:
    assert inbox.tail() == 0
    empty = inbox.after(0, 10)
    assert len(empty) == 0 and empty.last_seq == 0
    inbox.ingest([record(i, label=i) if i % 3 == 0 else record(i) for i in range(7)], WANTED)
    first = inbox.after(0, 4)
    assert first.record_ids == ("r0", "r1", "r2", "r3")
    assert first.labels.tolist() == [0, None, None, 3]
    assert first.columns["x"].dtype == np.float64
    assert first.columns["colour"].dtype == object
    assert first.seqs.dtype == np.int64 and first.last_seq == int(first.seqs[-1])
    rest = inbox.after(first.last_seq, 100)
    assert rest.record_ids == ("r4", "r5", "r6")
    assert rest.last_seq == inbox.tail()
    assert len(inbox.after(rest.last_seq, 100)) == 0


def test_loops_do_not_share_records(workspace: Workspace, inbox: Inbox, clock: Clock) -> None:
    other = Inbox(workspace.store, "fraud", clock=clock)
    inbox.ingest([record(1)], WANTED)
    assert other.ingest([record(1)], WANTED).accepted == 1
    assert other.counts().records == inbox.counts().records == 1


def test_a_bad_loop_name_is_refused(workspace: Workspace, clock: Clock) -> None:
    with pytest.raises(LoopConfigError, match="loop name"):
        Inbox(workspace.store, "no spaces/please", clock=clock)


def test_large_batches_are_split_into_transactions(inbox: Inbox) -> None:
    n = MAX_BATCH + 50
    records = [{"request_id": f"r{i}", "x": float(i)} for i in range(n)]
    result = inbox.ingest(records, {"x": "numeric"})
    assert result.accepted == n
    assert inbox.counts().records == n
    assert inbox.ingest(records[-100:], {"x": "numeric"}).duplicates == 100


def test_concurrent_writers_store_each_record_once(workspace: Workspace, clock: Clock) -> None:
    records = [record(i, label=i % 2) for i in range(300)]
    results: list[IngestResult] = []
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        mine = Inbox(workspace.store, "churn", clock=clock)
        try:
            for start in range(0, 300, 50):
                part = records[(start + offset) % 300 :][:50] or records[:50]
                results.append(mine.ingest(part, WANTED))
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k * 100,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    inbox = Inbox(workspace.store, "churn", clock=clock)
    assert sum(r.accepted for r in results) == 300
    assert sum(r.labels_applied for r in results) == 300
    assert sum(r.accepted + r.duplicates for r in results) == 2 * 3 * 300 - 300
    assert inbox.counts().to_json()["labelled"] == 300
    assert len(stored_rows(inbox)) == 300


# -- training windows ---------------------------------------------------------------------


def fill(inbox: Inbox, clock: Clock, n: int) -> None:
    """n labelled records an hour apart (record i at START + i h), plus unlabelled ones."""
    for i in range(n):
        clock.now = START + timedelta(hours=i)
        inbox.ingest([record(i, label=i % 3), record(1000 + i)], WANTED)


def test_recent_is_the_newest_labelled_rows_oldest_first(inbox: Inbox, clock: Clock) -> None:
    fill(inbox, clock, 20)
    frame = inbox.labelled(WindowPolicy(recent=5), ["x"], columns=["colour"])
    assert frame.record_ids == ("r15", "r16", "r17", "r18", "r19")
    assert frame.features == ("x",)
    assert frame.columns["x"].tolist() == [15.0, 16.0, 17.0, 18.0, 19.0]
    assert frame.columns["colour"].tolist() == ["red", "blue", "red", "blue", "red"]
    assert frame.labels.dtype == np.int64 and frame.labels.tolist() == [0, 1, 2, 0, 1]
    assert frame.matrix().shape == (5, 1)
    assert list(frame.seqs) == sorted(frame.seqs)
    everything = inbox.labelled(WindowPolicy(recent=1000), ["x"])
    assert len(everything) == 20


def test_a_time_window_is_measured_from_now(inbox: Inbox, clock: Clock) -> None:
    fill(inbox, clock, 20)  # record i's event time is its ingestion time, START + i h
    now = START + timedelta(hours=19)
    frame = inbox.labelled(WindowPolicy(seconds=3 * 3600), ["x"], now=now)
    assert frame.record_ids == ("r16", "r17", "r18", "r19")
    past = inbox.labelled(WindowPolicy(seconds=3600), ["x"], now=START + timedelta(hours=5))
    assert past.record_ids == ("r4", "r5")  # later rows are in the future of that `now`
    assert frame.times.tolist() == [(START + timedelta(hours=h)).timestamp() for h in range(16, 20)]


def test_recent_plus_reference_keeps_some_of_the_old_world(inbox: Inbox, clock: Clock) -> None:
    fill(inbox, clock, 30)
    policy = WindowPolicy(recent=10, reference=5)
    frame = inbox.labelled(policy, ["x"], seed=7)
    assert len(frame) == 15
    assert frame.record_ids[-10:] == tuple(f"r{i}" for i in range(20, 30))
    old = frame.record_ids[:5]
    assert len(set(old)) == 5 and all(int(rid[1:]) < 20 for rid in old)
    assert inbox.labelled(policy, ["x"], seed=7).record_ids == frame.record_ids
    others = {inbox.labelled(policy, ["x"], seed=s).record_ids[:5] for s in range(5)}
    assert len(others) > 1
    timed = inbox.labelled(WindowPolicy(seconds=3600, reference=3), ["x"], seed=1)
    assert len(timed) == 5 and timed.record_ids[-2:] == ("r28", "r29")


def test_an_empty_inbox_gives_an_empty_frame(inbox: Inbox) -> None:
    frame = inbox.labelled(WindowPolicy(recent=10), ["x", "y"], columns=["colour"])
    assert len(frame) == 0 and frame.matrix().shape == (0, 2)


def test_a_feature_no_record_has_is_reported_by_name(inbox: Inbox, clock: Clock) -> None:
    fill(inbox, clock, 3)
    with pytest.raises(DataError, match=r"features \['y'\]"):
        inbox.labelled(WindowPolicy(recent=10), ["x", "y"])


def test_the_first_labelled_rows_are_the_oldest(inbox: Inbox, clock: Clock) -> None:
    fill(inbox, clock, 10)
    first = inbox.first_labelled(["x"], 3, columns=["colour"])
    assert first.record_ids == ("r0", "r1", "r2")
    assert list(first.columns) == ["x", "colour"]
    assert len(inbox.first_labelled(["x"], 100)) == 10
