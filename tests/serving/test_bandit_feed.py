"""The bandit feed on a real store: which rows teach which arm, in what order, and what a
refused, late, duplicated or out-of-order row does to the learned state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from mlgate.experiments.bandits import UCB1, LinUCB, ThompsonSampling
from mlgate.serving.bandit_feed import BanditFeed
from mlgate.serving.feedback import FeedbackItem, record_feedback
from mlgate.serving.predlog import PredictionLogWriter, PredictionRecord
from mlgate.workspace import Workspace

STAMP = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
LATER = STAMP + timedelta(seconds=6)  # past the feed's settle time


def _stamp() -> datetime:
    return STAMP


def _row(
    request_id: str,
    arm: int,
    *,
    status: str = "ok",
    shadow: bool = False,
    version: str | None = None,
    route: str | None = None,
    endpoint: str = "iris",
    context: tuple[float, ...] | None = None,
) -> PredictionRecord:
    suffix = {"fallback": ":fallback"}.get(status, "")
    return PredictionRecord(
        request_id=request_id,
        endpoint=endpoint,
        version=version or str(arm),
        route=route or f"bandit:exploit→{arm}{suffix}",
        status=status,
        shadow=shadow,
        inputs=None,
        outputs=None,
        latency_ms=1.0,
        created_at=STAMP.timestamp(),
        context=context,
    )


def _log(ws: Workspace, records: list[PredictionRecord]) -> None:
    writer = PredictionLogWriter(ws.store, batch_size=3)
    for record in records:
        assert writer.record(record)
    asyncio.run(writer.close())
    assert writer.written == len(records)


def _feed(
    ws: Workspace, learner: Any, now: list[datetime], dimension: int | None = None
) -> BanditFeed:
    return BanditFeed(ws.store, "iris", learner, [1, 2], dimension=dimension, clock=lambda: now[0])


def _stats(state: dict[str, Any], key: str) -> dict[Any, Any]:
    return dict(zip(state["arms"], state[key], strict=True))


pytestmark = pytest.mark.parametrize("store_url", ["sqlite", "postgres"], indirect=True)


def test_rewards_go_to_the_chosen_arm_and_failures_count_as_zero(workspace: Workspace) -> None:
    _log(
        workspace,
        [
            _row("r1", 1),
            _row("r1", 2, shadow=True, route="shadow"),  # the client never saw it
            _row("r2", 2),
            _row("r2", 2),  # logged twice (a retried batch): counts once
            _row("r3", 2, status="fallback", version="1"),  # arm 2 failed, 1 answered
            _row("r4", 2, status="circuit_open", version="-"),
            _row("r5", 1, status="error", version="-"),
            _row("r6", 1, route="pinned:1"),  # not the bandit's choice
            _row("r7", 1, route="bandit:exploit→9"),  # an arm of an older spec
            _row("r1", 1, endpoint="other"),
        ],
    )
    record_feedback(
        workspace.store,
        "iris",
        [
            FeedbackItem("r1", reward=1.0),
            FeedbackItem("r1", reward=0.5),  # a second reward for r1: the first counts
            FeedbackItem("r2", reward=2.0),
            FeedbackItem("r2", label="cat"),
            FeedbackItem("r3", reward=7.0),  # about the fallback's answer: arm 2 got its 0
            FeedbackItem("r6", reward=4.0),
            FeedbackItem("r7", reward=4.0),
        ],
        _stamp,
    )
    record_feedback(workspace.store, "other", [FeedbackItem("r1", reward=100.0)], _stamp)
    now = [STAMP]
    feed = _feed(workspace, UCB1([1, 2], seed=0), now)
    assert feed.fold() is None, "rows younger than the settle time wait"
    now[0] = LATER
    state = feed.fold()
    assert state is not None
    # arm 1: r1's first reward (1.0) and r5's failure (0); arm 2: r2 (2.0), r3 and r4 (0, 0)
    assert _stats(state, "counts") == {1: 2, 2: 3}
    assert _stats(state, "sums") == {1: 1.0, 2: 2.0}
    assert feed.fold() is None, "nothing is folded twice"


def test_a_late_prediction_row_is_waited_for_then_given_up(workspace: Workspace) -> None:
    record_feedback(workspace.store, "iris", [FeedbackItem("late", reward=1.0)], _stamp)
    record_feedback(workspace.store, "iris", [FeedbackItem("never", reward=1.0)], _stamp)
    now = [LATER]
    feed = _feed(workspace, UCB1([1, 2], seed=0), now)
    assert feed.fold() is None and feed.watermark == 0, "waits for the late row"
    _log(workspace, [_row("late", 2)])  # the writer catches up
    state = feed.fold()
    assert state is not None and _stats(state, "counts") == {1: 0, 2: 1}
    stuck = feed.watermark
    assert feed.fold() is None and feed.watermark == stuck
    now[0] = STAMP + timedelta(seconds=31)  # past the grace period: given up
    assert feed.fold() is None and feed.watermark > stuck
    later = STAMP + timedelta(seconds=40)
    _log(workspace, [_row("after", 1)])
    record_feedback(workspace.store, "iris", [FeedbackItem("after", reward=1.0)], lambda: later)
    now[0] = later + timedelta(seconds=6)
    state = feed.fold()
    assert state is not None and _stats(state, "counts") == {1: 1, 2: 1}


def test_a_reward_the_policy_refuses_costs_only_itself(workspace: Workspace) -> None:
    _log(workspace, [_row(f"q{i}", 1 + i % 2) for i in range(6)])
    rewards = [1.0, 0.0, 5.0, 1.0, 0.0, 1.0]  # 5.0 is no Bernoulli reward
    items = [FeedbackItem(f"q{i}", reward=r) for i, r in enumerate(rewards)]
    record_feedback(workspace.store, "iris", items, _stamp)
    feed = _feed(workspace, ThompsonSampling([1, 2], "bernoulli", seed=0), [LATER])
    state = feed.fold()
    assert state is not None and (feed.folded, feed.refused) == (5, 1)
    assert _stats(state, "sums") == {1: 1.0, 2: 2.0}


def test_contexts_that_would_poison_a_linear_policy_are_skipped(workspace: Workspace) -> None:
    good = (1.0, 0.0, 1.0)
    _log(
        workspace,
        [
            _row("c1", 1, context=good),
            _row("c2", 2, context=(1.0, 1e200, 0.0)),  # would overflow X'X to infinity
            _row("c3", 2, context=(1.0, 0.0)),  # another spec's length
            _row("c4", 2, context=(0.0, 1.0, 1.0)),
        ],
    )
    items = [FeedbackItem(f"c{i}", reward=1.0) for i in range(1, 5)]
    record_feedback(workspace.store, "iris", items, _stamp)
    learner = LinUCB([1, 2], ["a", "b"], seed=0)
    assert learner.encoder.dim == 3  # an intercept and two numbers
    feed = _feed(workspace, learner, [LATER], dimension=3)
    state = feed.fold()
    assert state is not None and feed.folded == 2
    assert np.isfinite(np.asarray(state["A"])).all()
    fresh = LinUCB([1, 2], ["a", "b"], seed=0)
    fresh.load_state(state)  # the served policy takes it without complaint
