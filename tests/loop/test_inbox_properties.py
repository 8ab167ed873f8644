"""No record lost, none doubled: any mix of records, labels and repeats, in any batches."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgate.loop.inbox import Inbox
from mlgate.loop.window import WindowPolicy
from mlgate.workspace import Workspace

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

IDS = [f"r{i}" for i in range(8)]
WANTED: dict[str, Any] = {"x": "numeric"}

event = st.one_of(
    st.builds(lambda i, x: {"request_id": i, "x": x}, st.sampled_from(IDS), st.integers(0, 3)),
    st.builds(lambda i, y: {"request_id": i, "label": y}, st.sampled_from(IDS), st.integers(0, 2)),
    st.builds(
        lambda i, x, y: {"request_id": i, "x": x, "label": y},
        st.sampled_from(IDS),
        st.integers(0, 3),
        st.integers(0, 2),
    ),
)
events = st.lists(event, max_size=40)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events, st.lists(st.integers(1, 10), min_size=1, max_size=10))
def test_every_record_and_first_label_ends_in_one_row(
    workspace: Workspace, records: list[dict[str, Any]], cuts: list[int]
) -> None:
    inbox = Inbox(
        workspace.store,
        f"prop-{uuid.uuid4().hex[:12]}",
        clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )
    accepted = applied = 0
    start = 0
    for size in itertools.cycle(cuts):  # batch sizes repeat until every event is sent
        if start >= len(records):
            break
        result = inbox.ingest(records[start : start + size], WANTED)
        accepted += result.accepted
        applied += result.labels_applied
        start += size
    first_x: dict[str, float] = {}
    first_label: dict[str, int] = {}
    for event in records:
        if "x" in event:
            first_x.setdefault(event["request_id"], float(event["x"]))
        if "label" in event:
            first_label.setdefault(event["request_id"], event["label"])
    seen = inbox.after(0, 1000)
    assert sorted(seen.record_ids) == sorted(first_x)
    assert accepted == len(first_x)
    assert dict(zip(seen.record_ids, seen.columns.get("x", []), strict=False)) == first_x
    assert inbox.label_of(IDS) == first_label
    counts = inbox.counts()
    assert counts.labelled == applied == len(set(first_x) & set(first_label))
    assert counts.label_only == len(set(first_label) - set(first_x))


steps = st.lists(
    st.one_of(
        st.tuples(st.just("ingest"), st.lists(event, min_size=1, max_size=3)),
        st.tuples(st.just("read"), st.integers(1, 4)),
        st.tuples(st.just("tick"), st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.0])),
    ),
    max_size=25,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps)
def test_labels_read_while_they_are_written_are_each_seen_once(
    workspace: Workspace, plan: list[tuple[str, Any]]
) -> None:
    """Pages of labelled_since, with its settle delay, between writes: none skipped."""
    moment = [datetime(2026, 1, 1, tzinfo=UTC)]
    inbox = Inbox(workspace.store, f"prop-{uuid.uuid4().hex[:12]}", clock=lambda: moment[0])
    mark: tuple[str, int] | None = None
    seen: list[str] = []

    def read(limit: int) -> int:
        nonlocal mark
        page, after = inbox.labelled_since(mark, ["x"], limit=limit)
        assert (after == mark) == (len(page) == 0)
        seen.extend(page.record_ids)
        mark = after
        return len(page)

    for action, value in plan:
        if action == "ingest":
            inbox.ingest(value, WANTED)
        elif action == "read":
            read(value)
        else:
            moment[0] += timedelta(seconds=value)
    moment[0] += timedelta(seconds=5)
    while read(3):
        pass
    labelled = inbox.labelled(WindowPolicy(recent=1000), ["x"]).record_ids
    assert sorted(seen) == sorted(labelled)  # every labelled record, each once
    assert mark == inbox.label_watermark()
