"""Label times, reading labels in the order they were stored, quarantine, wanted columns."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from mlgate.ledger.events import format_time
from mlgate.loop.inbox import Inbox, InboxSlice
from mlgate.loop.window import WindowPolicy
from mlgate.store.schema import loop_records
from mlgate.workspace import Workspace

WANTED: dict[str, Any] = {"x": "numeric", "colour": "categorical"}
START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> str:
        """Move on, and return the new time as the inbox writes it."""
        self.now += timedelta(seconds=seconds)
        return format_time(self.now)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def inbox(workspace: Workspace, clock: Clock) -> Inbox:
    return Inbox(workspace.store, "churn", clock=clock)


def record(i: int, **extra: Any) -> dict[str, Any]:
    return {"request_id": f"r{i}", "x": float(i), "colour": "red" if i % 2 else "blue", **extra}


def label(i: int, value: Any = 1) -> dict[str, Any]:
    return {"request_id": f"r{i}", "label": value}


def label_times(inbox: Inbox) -> dict[str, str | None]:
    query = sa.select(loop_records.c.record_id, loop_records.c.labelled_at).where(
        loop_records.c.loop == inbox.loop
    )
    with inbox.store.read() as conn:
        return {rid: at for rid, at in conn.execute(query)}


def drain(inbox: Inbox, after: tuple[str, int] | None, limit: int) -> list[InboxSlice]:
    """Every page labelled_since gives from ``after`` on (no settle delay)."""
    pages: list[InboxSlice] = []
    while True:
        page, mark = inbox.labelled_since(after, ["x"], limit=limit, settle_s=0)
        if not len(page):
            assert mark == after
            return pages
        assert mark is not None and (after is None or mark > after)
        pages.append(page)
        after = mark


def test_each_way_a_label_is_stored_sets_its_time(inbox: Inbox, clock: Clock) -> None:
    inline = format_time(clock.now)
    inbox.ingest([record(1, label=0), record(2)], WANTED)
    later = clock.tick()
    inbox.ingest([label(2)], WANTED)  # a label for a known record
    waiting = clock.tick()
    inbox.ingest([label(3)], WANTED)  # a label before its record
    assert label_times(inbox) == {"r1": inline, "r2": later, "r3": waiting}
    clock.tick()
    inbox.ingest([label(2), label(1, 1), label(3)], WANTED)  # repeats and a flip: no change
    assert label_times(inbox) == {"r1": inline, "r2": later, "r3": waiting}
    joined = clock.tick()
    inbox.ingest([record(3), record(4)], WANTED)  # the waiting label meets its record
    assert label_times(inbox) == {"r1": inline, "r2": later, "r3": joined, "r4": None}


def test_labels_are_read_in_the_order_they_were_stored(inbox: Inbox, clock: Clock) -> None:
    inbox.ingest([record(i) for i in range(4)], WANTED)
    clock.tick()
    inbox.ingest([label(3, 0), label(1, 1)], WANTED)  # one time: record order breaks the tie
    clock.tick()
    inbox.ingest([label(0, 0), record(5, label=1)], WANTED)
    clock.tick()
    inbox.ingest([label(9, 1)], WANTED)  # waits for its record: not readable yet
    page, mark = inbox.labelled_since(None, ["x"], limit=100, settle_s=0)
    assert page.record_ids == ("r1", "r3", "r0", "r5")
    assert page.labels.tolist() == [1, 0, 0, 1]
    assert page.columns["x"].tolist() == [1.0, 3.0, 0.0, 5.0]
    assert list(page.columns) == ["x"]  # only the features asked for
    assert mark == (format_time(START + timedelta(seconds=2)), int(page.seqs[-1]))
    assert page.last_seq == mark[1]
    event_times = [START.timestamp()] * 3 + [(START + timedelta(seconds=2)).timestamp()]
    assert page.times.tolist() == event_times


def test_the_watermark_moves_only_with_new_labels(inbox: Inbox, clock: Clock) -> None:
    assert inbox.label_watermark() is None
    empty, mark = inbox.labelled_since(None, ["x"], limit=10, settle_s=0)
    assert len(empty) == 0 and mark is None and empty.last_seq == 0
    inbox.ingest([record(1, label=1), record(2), label(7)], WANTED)
    first, mark = inbox.labelled_since(None, ["x"], limit=10, settle_s=0)
    assert first.record_ids == ("r1",) and mark is not None
    assert inbox.label_watermark() == mark  # the label of r7 waits: it is not a watermark
    again, same = inbox.labelled_since(mark, ["x"], limit=10, settle_s=0)
    assert len(again) == 0 and same == mark and again.last_seq == mark[1]
    clock.tick()
    inbox.ingest([label(2)], WANTED)
    second, moved = inbox.labelled_since(mark, ["x"], limit=10, settle_s=0)
    assert second.record_ids == ("r2",) and moved is not None
    assert moved > mark and inbox.label_watermark() == moved


def test_labels_younger_than_the_settle_delay_wait(inbox: Inbox, clock: Clock) -> None:
    inbox.ingest([record(1, label=1), record(2, label=0)], WANTED)
    held, mark = inbox.labelled_since(None, ["x"], limit=10)  # stored just now: held back
    assert len(held) == 0 and mark is None
    clock.tick(0.5)
    assert len(inbox.labelled_since(None, ["x"], limit=10)[0]) == 0
    assert len(inbox.labelled_since(None, ["x"], limit=10, settle_s=0.4)[0]) == 2
    clock.tick(0.5)  # exactly settle_s old: read
    settled, mark = inbox.labelled_since(None, ["x"], limit=10)
    assert settled.record_ids == ("r1", "r2")
    # a label stored now waits until it is settle_s old, whatever the watermark
    inbox.ingest([record(3, label=1)], WANTED)
    assert len(inbox.labelled_since(mark, ["x"], limit=10)[0]) == 0
    clock.tick()
    assert inbox.labelled_since(mark, ["x"], limit=10)[0].record_ids == ("r3",)
    with pytest.raises(ValueError, match="settle_s"):
        inbox.labelled_since(None, ["x"], limit=10, settle_s=-1)


def test_pages_with_equal_label_times_neither_skip_nor_repeat(inbox: Inbox, clock: Clock) -> None:
    inbox.ingest([record(i) for i in range(30)], WANTED)
    inbox.ingest([record(i, label=i % 2) for i in range(30, 40)], WANTED)
    inbox.ingest([label(i, i % 3) for i in range(0, 30, 2)], WANTED)  # all at one time
    pages = drain(inbox, None, 7)
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    ids = [rid for page in pages for rid in page.record_ids]
    seqs = np.concatenate([page.seqs for page in pages])
    assert len(set(ids)) == 25
    assert (np.diff(seqs) > 0).all()  # one label time: sequence order within it
    whole, _ = inbox.labelled_since(None, ["x"], limit=100, settle_s=0)
    assert tuple(ids) == whole.record_ids
    assert len(inbox.labelled_since(None, ["x"], limit=0, settle_s=0)[0]) == 0


def test_a_label_that_waited_is_read_after_its_time_was_passed(inbox: Inbox, clock: Clock) -> None:
    inbox.ingest([label(1), record(2)], WANTED)  # r1's label waits
    clock.tick()
    inbox.ingest([label(2)], WANTED)
    clock.tick()
    read, mark = inbox.labelled_since(None, ["x"], limit=10)
    assert read.record_ids == ("r2",)  # the watermark is past r1's label time now
    inbox.ingest([record(1)], WANTED)
    clock.tick()
    assert inbox.labelled_since(mark, ["x"], limit=10)[0].record_ids == ("r1",)


def test_quarantined_rows_are_never_trained_on_but_still_scored(
    workspace: Workspace, inbox: Inbox, clock: Clock
) -> None:
    inbox.ingest([record(i, label=i % 2) for i in range(10)], WANTED)
    inbox.ingest([record(10)], WANTED)
    frame = inbox.labelled(WindowPolicy(recent=4), ["x"])
    assert frame.record_ids == ("r6", "r7", "r8", "r9")
    assert inbox.quarantine(frame.seqs.tolist(), 7) == 4
    assert inbox.labelled(WindowPolicy(recent=4), ["x"]).record_ids == ("r2", "r3", "r4", "r5")
    everything = inbox.labelled(WindowPolicy(recent=100, reference=3), ["x"], seed=1)
    assert len(everything) == 6 and not {"r6", "r7", "r8", "r9"} & set(everything.record_ids)
    timed = inbox.labelled(WindowPolicy(seconds=3600), ["x"])
    assert timed.record_ids == tuple(f"r{i}" for i in range(6))
    assert inbox.first_labelled(["x"], 100).record_ids == tuple(f"r{i}" for i in range(6))
    clock.tick()
    scored, _ = inbox.labelled_since(None, ["x"], limit=100)
    assert len(scored) == 10  # they were served: their errors count
    counts = inbox.counts()
    assert (counts.records, counts.labelled, counts.quarantined) == (11, 10, 4)
    assert counts.to_json()["quarantined"] == 4
    # the first run to quarantine a row keeps it; other loops' rows are not touched
    assert inbox.quarantine(frame.seqs.tolist(), 8) == 0
    other = Inbox(workspace.store, "fraud", clock=clock)
    other.ingest([record(i, label=1) for i in range(3)], WANTED)
    theirs = other.first_labelled(["x"], 3).seqs.tolist()
    assert inbox.quarantine(theirs + [10**9], 9) == 0
    assert len(other.first_labelled(["x"], 3)) == 3
    query = sa.select(loop_records.c.quarantined_by).where(loop_records.c.loop == "churn")
    with workspace.store.read() as conn:
        assert sorted(q for (q,) in conn.execute(query) if q is not None) == [7] * 4


def test_quarantine_takes_more_rows_than_one_statement(inbox: Inbox) -> None:
    inbox.ingest([{"request_id": f"r{i}", "x": float(i), "label": 1} for i in range(1203)], WANTED)
    seqs = inbox.first_labelled(["x"], 2000).seqs.tolist()
    assert inbox.quarantine(seqs[:1200] + seqs[:5], 1) == 1200
    assert inbox.first_labelled(["x"], 2000).record_ids == ("r1200", "r1201", "r1202")
    assert inbox.counts().quarantined == 1200


def test_wanted_features_are_present_even_when_no_record_has_them(inbox: Inbox) -> None:
    empty = inbox.after(0, 10, ["x", "y"])
    assert list(empty.columns) == ["x", "y"]
    assert all(c.dtype == np.float64 and len(c) == 0 for c in empty.columns.values())
    inbox.ingest([record(1), {"request_id": "r2", "x": 2.0}], WANTED)
    seen = inbox.after(0, 10, ["y", "x"])
    assert list(seen.columns) == ["y", "x", "colour"]  # those wanted first, then the rest
    assert seen.columns["y"].dtype == np.float64 and np.isnan(seen.columns["y"]).all()
    assert seen.columns["x"].tolist() == [1.0, 2.0]
    assert seen.columns["colour"].tolist() == ["red", None]
    plain = inbox.after(0, 10)  # the old call: only what the rows have
    assert list(plain.columns) == ["x", "colour"]
    assert plain.record_ids == seen.record_ids and plain.last_seq == seen.last_seq
    inbox.ingest([label(2, 0)], WANTED)
    scored, _ = inbox.labelled_since(None, ["x", "y"], limit=10, settle_s=0)
    assert scored.columns["x"].tolist() == [2.0]
    assert math.isnan(scored.columns["y"][0])
