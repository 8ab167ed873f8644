"""The loop's rollout on a real server with real traffic: promotion, and rollback by itself.

Training data goes into the inbox directly (the world after the drift); the candidate then
meets live requests from a client thread. Where the live world is the one it learnt, the
canary promotes it; where the live world is the old one, its rewards are worse than the
champion's and the canary rolls it back, with no one stepping in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mlgate.cli._demo_traffic import Traffic
from mlgate.loop.runner import LoopRunner
from mlgate.loop.runs import LoopRun, RunState
from mlgate.loop.sources import wanted_columns
from mlgate.loop.synthetic import SyntheticWorld
from mlgate.workspace import Workspace
from tests.loop.conftest import ENDPOINT, loop_config, records

_PROMOTION = {
    "steps": [10, 50, 100],
    "interval_s": 1,
    "min_samples": 20,
    "metrics": [
        {
            "name": "error_rate",
            "source": "error_rate",
            "harm": "increase",
            "tolerance": 0.1,
            "critical": True,
        },
        {"name": "reward", "source": "reward", "harm": "decrease", "tolerance": 0.05},
    ],
}


def roll_out(workspace: Workspace, serve: Callable[..., Any], live_world: str) -> LoopRun:
    config = loop_config(triggers={"on": ["manual"]}, promotion=_PROMOTION)
    runner = LoopRunner(workspace, config)
    world = SyntheticWorld(seed=21)
    wanted = wanted_columns(config)
    runner.inbox.ingest(records(world, 400, "before", start=0), wanted)
    runner.inbox.ingest(records(world, 700, "after", start=400), wanted)
    server = serve()
    traffic = Traffic(server.url, ENDPOINT, label_delay=5, feedback_batch=10)
    traffic.set_world(live_world)  # type: ignore[arg-type]
    traffic.start()
    try:
        assert runner.trigger("test").fire
        deadline = (
            time.monotonic() + 120
        )  # a generous bound for a loaded machine, not a timing test
        run = runner.runs.list(config.name)[0]
        while run.active and time.monotonic() < deadline:
            runner.step()
            run = runner.runs.list(config.name)[0]
            time.sleep(0.1)
    finally:
        traffic.stop()
    assert not traffic.errors[:1], traffic.errors[:3]
    return run


def test_a_candidate_that_wins_live_is_promoted(
    workspace: Workspace, champion: int, serve: Callable[..., Any]
) -> None:
    run = roll_out(workspace, serve, "after")
    assert run.state == RunState.PROMOTED, run.error
    assert workspace.registry.get(ENDPOINT, "champion").version == run.candidate_version
    with workspace.store.read() as conn:
        kinds = [e.kind for e in workspace.log.entries(conn, 0)]
    assert kinds.count("canary.step") >= 1 and kinds.count("loop.promoted") == 1
    assert kinds.index("loop.canary_started") < kinds.index("canary.promoted")
    assert workspace.verify().size == len(kinds)


def test_a_candidate_that_loses_live_is_rolled_back_by_itself(
    workspace: Workspace, champion: int, serve: Callable[..., Any]
) -> None:
    run = roll_out(workspace, serve, "before")  # it learnt the new world; clients live in the old
    assert run.state == RunState.ROLLED_BACK, run.error
    assert workspace.registry.get(ENDPOINT, "champion").version == champion
    with workspace.store.read() as conn:
        kinds = [e.kind for e in workspace.log.entries(conn, 0)]
    assert "canary.rolled_back" in kinds and "loop.rolled_back" in kinds
    assert "loop.promoted" not in kinds
