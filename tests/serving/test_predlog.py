"""The prediction log writer and feedback on real stores, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgate.errors import InvalidRequestError
from mlgate.serving.feedback import (
    FeedbackItem,
    labelled_predictions,
    read_predictions,
    record_feedback,
)
from mlgate.serving.predlog import PredictionLogWriter, PredictionRecord
from mlgate.store import Store, open_store
from mlgate.store.schema import feedback, prediction_log
from mlgate.workspace import Workspace


def _clock() -> datetime:
    return datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _record(
    request_id: str,
    *,
    endpoint: str = "iris",
    version: str = "1",
    status: str = "ok",
    shadow: bool = False,
    outputs: dict[str, Any] | None = None,
) -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id,
        endpoint=endpoint,
        version=version,
        route="primary",
        status=status,
        shadow=shadow,
        inputs={"x": [[1.0, 2.0]]},
        outputs={"y": [0.5]} if outputs is None else outputs,
        latency_ms=1.25,
        created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp(),
    )


def _log(ws: Workspace, records: list[PredictionRecord]) -> None:
    """Write through the real writer, unstarted: close() flushes in batches."""
    writer = PredictionLogWriter(ws.store, batch_size=2)
    for record in records:
        assert writer.record(record)
    asyncio.run(writer.close())
    assert (writer.written, writer.dropped) == (len(records), 0)


async def _until(condition: Any) -> None:
    """Wait for a condition the writer's task will make true, bounded so a bug fails."""
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.005)


@pytest.fixture
def unreachable() -> Iterator[Store]:
    """A store whose server refuses connections at once (nothing listens on port 1)."""
    store = open_store("postgresql+psycopg://x@127.0.0.1:1/none")
    yield store
    store.dispose()


class FlakyStore(Store):
    """The real store, whose first ``failures`` write transactions fail to connect."""

    def __init__(self, store: Store, failures: int) -> None:
        super().__init__(store.engine)
        self.failures = failures

    @contextmanager
    def write(self) -> Iterator[Connection]:
        if self.failures > 0:
            self.failures -= 1
            raise sa.exc.OperationalError("INSERT", {}, ConnectionError("connection refused"))
        with super().write() as conn:
            yield conn


# -- the writer ---------------------------------------------------------------------


def test_records_are_written_in_order_and_close_flushes(workspace: Workspace) -> None:
    records = [_record(f"r{i}") for i in range(7)]

    async def main() -> PredictionLogWriter:
        writer = PredictionLogWriter(workspace.store, batch_size=3, flush_interval_s=0.01)
        await writer.start()
        for record in records:
            assert writer.record(record)
        await writer.close()
        return writer

    writer = asyncio.run(main())
    assert (writer.written, writer.dropped) == (7, 0)
    rows = read_predictions(workspace.store, "iris")
    assert [row["request_id"] for row in rows] == [f"r{i}" for i in range(7)]
    assert [row["id"] for row in rows] == sorted(row["id"] for row in rows)
    first = rows[0]
    assert first["inputs"] == {"x": [[1.0, 2.0]]} and first["outputs"] == {"y": [0.5]}
    assert first["shadow"] is False and first["latency_ms"] == 1.25
    assert first["created_at"] == "2025-01-02T03:04:05.000000Z"


def test_a_full_batch_is_written_without_waiting_for_the_interval(workspace: Workspace) -> None:
    async def main() -> None:
        writer = PredictionLogWriter(workspace.store, batch_size=3, flush_interval_s=3600)
        await writer.start()
        for i in range(3):
            writer.record(_record(f"r{i}"))
        await _until(lambda: writer.written == 3)
        writer.record(_record("r3"))
        await writer.close()
        assert writer.written == 4

    asyncio.run(main())
    assert len(read_predictions(workspace.store, "iris")) == 4


def test_a_full_batch_wakes_the_writer_for_whole_batches_only(workspace: Workspace) -> None:
    """The tail waits for the next full batch or the interval: no trickle of tiny writes."""

    async def main() -> None:
        writer = PredictionLogWriter(workspace.store, batch_size=3, flush_interval_s=3600)
        await writer.start()
        for i in range(8):  # queued before the writer runs: two whole batches and two more
            writer.record(_record(f"r{i}"))
        await _until(lambda: writer.written == 6)
        await asyncio.sleep(0.05)
        assert writer.written == 6  # r6 and r7 are no batch yet, and the interval is an hour
        writer.record(_record("r8"))  # completes a batch: written without the interval
        await _until(lambda: writer.written == 9)
        await writer.close()

    asyncio.run(main())
    rows = read_predictions(workspace.store, "iris")
    assert [row["request_id"] for row in rows] == [f"r{i}" for i in range(9)]


def test_the_interval_writes_a_part_batch(workspace: Workspace) -> None:
    async def main() -> None:
        writer = PredictionLogWriter(workspace.store, batch_size=100, flush_interval_s=0.02)
        await writer.start()
        writer.record(_record("r0"))
        await _until(lambda: writer.written == 1)
        await writer.close()

    asyncio.run(main())


def test_a_full_queue_drops_and_counts_without_blocking(workspace: Workspace) -> None:
    drops: list[int] = []
    writer = PredictionLogWriter(workspace.store, max_queue=2, on_drop=drops.append)
    accepted = [writer.record(_record(f"r{i}")) for i in range(5)]
    assert accepted == [True, True, False, False, False]
    assert writer.dropped == 3 and drops == [1, 1, 1]
    asyncio.run(writer.close())
    assert writer.written == 2
    assert [r["request_id"] for r in read_predictions(workspace.store, "iris")] == ["r0", "r1"]
    assert writer.record(_record("late")) is False  # closed: nothing will write it
    assert writer.dropped == 4


def test_a_failed_batch_is_retried_once_before_newer_records(workspace: Workspace) -> None:
    store = FlakyStore(workspace.store, failures=1)
    writer = PredictionLogWriter(store, batch_size=2)
    for i in range(4):
        writer.record(_record(f"r{i}"))
    asyncio.run(writer.close())
    assert (writer.written, writer.dropped) == (4, 0)
    ids = [r["request_id"] for r in read_predictions(workspace.store, "iris")]
    assert ids == ["r0", "r1", "r2", "r3"]


def test_a_batch_that_fails_twice_is_dropped_and_later_ones_still_written(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    drops: list[int] = []
    store = FlakyStore(workspace.store, failures=2)
    writer = PredictionLogWriter(store, batch_size=2, on_drop=drops.append)
    for i in range(4):
        writer.record(_record(f"r{i}"))
    with caplog.at_level(logging.WARNING, logger="mlgate.serving.predlog"):
        asyncio.run(writer.close())
    assert (writer.written, writer.dropped, drops) == (2, 2, [2])
    assert [r["request_id"] for r in read_predictions(workspace.store, "iris")] == ["r2", "r3"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("will retry once" in m for m in messages)
    assert any("dropping them" in m for m in messages)


def test_an_unreachable_database_costs_records_not_the_writer(
    unreachable: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store = unreachable
    drops: list[int] = []

    async def main() -> PredictionLogWriter:
        writer = PredictionLogWriter(
            store, batch_size=2, flush_interval_s=0.01, on_drop=drops.append
        )
        await writer.start()
        for i in range(5):
            writer.record(_record(f"r{i}"))
        await _until(lambda: writer.dropped >= 2)  # failed, retried, dropped: still running
        writer.record(_record("r5"))
        await writer.close()
        return writer

    with caplog.at_level(logging.WARNING, logger="mlgate.serving.predlog"):
        writer = asyncio.run(main())
    assert (writer.written, writer.dropped, sum(drops)) == (0, 6, 6)
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert "OperationalError" in caplog.text
    assert "[1.0, 2.0]" not in caplog.text  # SQLAlchemy's parameter dump stays out of logs


def test_a_table_dropped_mid_run_does_not_crash_the_writer(workspace: Workspace) -> None:
    async def main() -> PredictionLogWriter:
        writer = PredictionLogWriter(workspace.store, batch_size=2, flush_interval_s=0.01)
        await writer.start()
        writer.record(_record("r0"))
        writer.record(_record("r1"))
        await _until(lambda: writer.written == 2)
        with workspace.store.write() as conn:
            conn.execute(sa.text("DROP TABLE prediction_log"))
        for i in range(2, 5):
            writer.record(_record(f"r{i}"))
        await writer.close()
        return writer

    writer = asyncio.run(main())
    assert (writer.written, writer.dropped) == (2, 3)


def test_records_that_do_not_fit_are_dropped_alone(workspace: Workspace) -> None:
    writer = PredictionLogWriter(workspace.store)
    writer.record(_record("ok-1"))
    writer.record(_record("x" * 129))  # PostgreSQL would refuse the whole batch for it
    writer.record(_record("ok-2", version="v" * 65))
    writer.record(_record("ok-3"))
    asyncio.run(writer.close())
    assert (writer.written, writer.dropped) == (2, 2)
    ids = [r["request_id"] for r in read_predictions(workspace.store, "iris")]
    assert ids == ["ok-1", "ok-3"]


def test_non_finite_numbers_are_logged_as_null_and_unencodable_payloads_as_sql_null(
    workspace: Workspace,
) -> None:
    arrays = {
        "p": np.array([[0.25, np.nan], [np.inf, 0.5]], dtype=np.float32),
        "label": np.array([b"cat", b"dog"], dtype=object),
        "column": np.arange(6).reshape(2, 3)[:, 1],  # not contiguous
    }
    _log(
        workspace,
        [
            _record("nan", outputs={"y": [math.nan]}),
            _record("arrays", outputs=arrays),
            _record("odd", outputs={"y": object()}),
            _record("plain"),
        ],
    )
    rows = read_predictions(workspace.store, "iris")
    assert [(r["request_id"], r["outputs"]) for r in rows] == [
        ("nan", {"y": [None]}),
        ("arrays", {"p": [[0.25, None], [None, 0.5]], "label": ["cat", "dog"], "column": [1, 4]}),
        ("odd", None),
        ("plain", {"y": [0.5]}),
    ]
    with workspace.store.read() as conn:  # SQL NULL, not the JSON document null
        nulls = conn.execute(
            sa.select(sa.func.count())
            .select_from(prediction_log)
            .where(prediction_log.c.outputs.is_(None))
        ).scalar_one()
    assert nulls == 1


def test_a_failing_on_drop_hook_is_logged_not_raised(
    unreachable: Store, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_n: int) -> None:
        raise RuntimeError("metrics are down")

    writer = PredictionLogWriter(unreachable, max_queue=1, on_drop=broken)
    writer.record(_record("r0"))
    with caplog.at_level(logging.ERROR, logger="mlgate.serving.predlog"):
        assert writer.record(_record("r1")) is False
    assert writer.dropped == 1 and "on_drop" in caplog.text


def test_settings_are_checked(unreachable: Store) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        PredictionLogWriter(unreachable, batch_size=0)


# -- reads ---------------------------------------------------------------------------


def test_read_predictions_pages_by_id(workspace: Workspace) -> None:
    _log(workspace, [_record(f"r{i}") for i in range(5)] + [_record("other", endpoint="b")])
    first = read_predictions(workspace.store, "iris", limit=2)
    second = read_predictions(workspace.store, "iris", limit=2, since_id=first[-1]["id"])
    third = read_predictions(workspace.store, "iris", limit=2, since_id=second[-1]["id"])
    assert [r["request_id"] for r in first + second + third] == [f"r{i}" for i in range(5)]
    assert read_predictions(workspace.store, "iris", since_id=third[-1]["id"]) == []
    with pytest.raises(InvalidRequestError, match="limit must be an integer from 1"):
        read_predictions(workspace.store, "iris", limit=0)


# -- feedback ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (FeedbackItem("", reward=1.0), "request_id must be the non-empty id .* got 0 characters"),
        (FeedbackItem("r" * 129, reward=1.0), "got 129 characters"),
        (FeedbackItem(7, reward=1.0), "request_id .* got int"),  # type: ignore[arg-type]
        (FeedbackItem("r1"), "give a label, a reward or both; it has neither"),
        (FeedbackItem("r1", reward=math.nan), "reward must be a finite number, got nan"),
        (FeedbackItem("r1", reward=math.inf), "reward must be a finite number, got inf"),
        (FeedbackItem("r1", reward="1"), "reward must be a number, got str"),  # type: ignore[arg-type]
        (FeedbackItem("r1", reward=True), "reward must be a number, got bool"),
        (FeedbackItem("r1", label=[math.nan]), "label must be JSON"),
        (FeedbackItem("r1", label=object()), "label must be JSON"),
    ],
)
def test_bad_feedback_is_refused_before_the_database(
    unreachable: Store, item: FeedbackItem, message: str
) -> None:
    good = FeedbackItem("r0", label="cat", reward=1.0)
    with pytest.raises(InvalidRequestError, match=f"feedback item 1.*{message}"):
        record_feedback(unreachable, "iris", [good, item], _clock)


def test_one_bad_item_refuses_the_whole_request(workspace: Workspace) -> None:
    items = [FeedbackItem("r0", label="cat"), FeedbackItem("r1", reward=math.nan)]
    with pytest.raises(InvalidRequestError, match="feedback item 1 .request 'r1'."):
        record_feedback(workspace.store, "iris", items, _clock)
    with workspace.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(feedback)).scalar_one() == 0


def test_feedback_is_stored_with_the_clock_time(workspace: Workspace) -> None:
    items = [FeedbackItem("r0", label="cat"), FeedbackItem("r1", reward=2), FeedbackItem("r2")]
    assert record_feedback(workspace.store, "iris", items[:2], _clock) == 2
    assert record_feedback(workspace.store, "iris", [], _clock) == 0
    with workspace.store.read() as conn:
        rows = conn.execute(
            sa.select(
                feedback.c.request_id, feedback.c.label, feedback.c.reward, feedback.c.created_at
            ).order_by(feedback.c.id)
        ).all()
    stamp = "2025-01-02T03:04:05.000000Z"
    assert [tuple(r) for r in rows] == [("r0", "cat", None, stamp), ("r1", None, 2.0, stamp)]
    with pytest.raises(InvalidRequestError, match="endpoint must be a name"):
        record_feedback(workspace.store, "", items[:1], _clock)


def test_labelled_predictions_take_the_latest_label(workspace: Workspace) -> None:
    _log(
        workspace,
        [
            _record("r1"),
            _record("r1", version="2", shadow=True),
            _record("r2"),
            _record("r3"),
            _record("r4", status="shed"),
        ],
    )
    record_feedback(
        workspace.store,
        "iris",
        [
            FeedbackItem("r1", label="cat"),
            FeedbackItem("r1", label={"class": "dog"}),
            FeedbackItem("r1", reward=1.0),  # no label: does not hide the latest one
            FeedbackItem("r3", label=[1, 2]),
            FeedbackItem("r4", label="shed rows answered nothing"),
        ],
        _clock,
    )
    rows = labelled_predictions(workspace.store, "iris")
    assert [(r["request_id"], r["version"], r["shadow"], r["label"]) for r in rows] == [
        ("r1", "1", False, {"class": "dog"}),
        ("r1", "2", True, {"class": "dog"}),
        ("r3", "1", False, [1, 2]),
    ]
    newest = labelled_predictions(workspace.store, "iris", limit=2)
    assert [r["request_id"] for r in newest] == ["r1", "r3"]
    assert newest[0]["shadow"] is True


def test_a_batch_converted_in_slices_keeps_every_record_and_its_order(
    workspace: Workspace,
) -> None:
    """The writer lets go of the GIL between slices of records; none is lost or reordered."""
    ids = [f"r{i:03d}" for i in range(100)]
    writer = PredictionLogWriter(workspace.store, batch_size=1000)
    for request_id in ids:
        writer.record(_record(request_id))
    writer.record(_record("x" * 129))  # unfit, in the last slice: dropped alone
    asyncio.run(writer.close())
    assert (writer.written, writer.dropped) == (100, 1)
    rows = read_predictions(workspace.store, "iris")
    assert [row["request_id"] for row in rows] == ids
