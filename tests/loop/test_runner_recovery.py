"""Crash recovery: a loop process that dies between two transactions, or races another.

A crash is simulated by leaving the store exactly as the dying process would have left
it, made with the real components (the registry, the canary controller, the run store),
and then stepping a new runner, as a restarted process would. Two runners on one store
are two processes' views of it; one takes each step while the other is in the middle of
the same step, through the progress callback the driver calls between its work and its
transition. The real process, killed with SIGKILL, is in test_loop_cli.py.
"""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from mlgate.loop.config import LoopConfig
from mlgate.loop.frame import frame_from_bytes
from mlgate.loop.machine import LOOP_ACTOR
from mlgate.loop.runner import LoopRunner
from mlgate.loop.runs import LoopRun, RunState, RunStore, StaleRunError
from mlgate.loop.sources import wanted_columns
from mlgate.loop.synthetic import FEATURES, SyntheticWorld
from mlgate.registry.records import Lineage
from mlgate.store.schema import canaries, model_versions
from mlgate.workspace import Workspace
from tests.loop.conftest import ENDPOINT, loop_config, records
from tests.loop.test_runner import ledger_kinds, step_until
from tests.loop.test_runner_failures import run_kinds, started_run

TRANSITIONS = [
    "loop.triggered",
    "loop.data_checked",
    "loop.trained",
    "loop.gated",
    "loop.registered",
    "loop.canary_started",
]


def manual() -> LoopConfig:
    return loop_config(triggers={"on": ["manual"]})


def step_to(runner: LoopRunner, state: RunState) -> LoopRun:
    """Step until the newest run is in ``state`` (and no further)."""
    name = runner.config.name
    step_until(runner, lambda: (r := runner.runs.list(name)[0]).state == state or not r.active)
    run = runner.runs.list(name)[0]
    assert run.state == state, run.error
    return run


def versions_of(workspace: Workspace, sha256: str | None) -> list[int]:
    with workspace.store.read() as conn:
        found = conn.execute(
            sa.select(model_versions.c.version).where(model_versions.c.sha256 == sha256)
        ).scalars()
        return [int(v) for v in found]


def canaries_of(workspace: Workspace) -> list[int]:
    with workspace.store.read() as conn:
        found = conn.execute(sa.select(canaries.c.id).where(canaries.c.endpoint == ENDPOINT))
        return [int(v) for v in found.scalars()]


def test_a_version_registered_before_the_crash_is_adopted(
    workspace: Workspace, champion: int
) -> None:
    config = manual()
    run = step_to(started_run(workspace, config, seed=21), RunState.REGISTERING)
    assert run.artifact_sha256 is not None and run.data is not None
    code = run.code or {}
    # Registered as the driver registers; the process died before the transition.
    registered = workspace.registry.register(
        config.model,
        workspace.artifacts.get(run.artifact_sha256),
        actor=LOOP_ACTOR,
        flavor=str(run.data["flavor"]),
        params=run.params or {},
        metrics={k: v for k, v in (run.metrics or {}).items() if v is not None},
        tags={"loop": config.name, "loop_run": str(run.id)},
        lineage=Lineage(
            dataset_fingerprint=run.data.get("fingerprint"),
            code_commit=code.get("commit"),
            code_dirty=code.get("dirty"),
            run_id=f"loop:{config.name}:{run.id}",
            parent_version=run.champion_version,
        ),
        trusted_types=tuple(run.data.get("trusted_types", ())),
    )

    LoopRunner(workspace, config).step()  # the restarted process

    after = workspace_run(workspace, run.id)
    assert after.state == RunState.REGISTERED
    assert after.candidate_version == registered.version == champion + 1
    assert versions_of(workspace, run.artifact_sha256) == [registered.version]
    assert run_kinds(workspace, run).count("loop.registered") == 1
    assert ledger_kinds(workspace).count("model.registered") == 2  # the champion, this one
    assert workspace.verify().size > 0


def test_a_canary_started_before_the_crash_is_adopted(workspace: Workspace, champion: int) -> None:
    config = manual()
    runner = started_run(workspace, config, seed=22)
    run = step_to(runner, RunState.REGISTERED)
    assert run.candidate_version is not None
    # Started as the driver starts it; the process died before the transition.
    started = runner.canaries.start(
        config.endpoint, run.candidate_version, config=config.promotion.canary, actor=LOOP_ACTOR
    )

    LoopRunner(workspace, config).step()

    after = workspace_run(workspace, run.id)
    assert after.state == RunState.CANARY
    assert after.canary_id == started.id
    assert canaries_of(workspace) == [started.id]
    assert ledger_kinds(workspace).count("canary.started") == 1
    assert run_kinds(workspace, run).count("loop.canary_started") == 1
    assert workspace.verify().size > 0


def test_two_processes_stepping_one_run_take_each_step_once(
    workspace: Workspace, champion: int
) -> None:
    config = manual()
    first = started_run(workspace, config, seed=23)
    # The second process: whenever it is in the middle of a step, the first takes it.
    armed, taken = {"now": False}, []

    def meanwhile(_text: str) -> None:
        if armed["now"]:
            armed["now"] = False
            taken.append(first.step().run)

    second = LoopRunner(workspace, config, progress=meanwhile)
    stale = second.runs.active(config.name)
    assert stale is not None and stale.state == RunState.TRIGGERED
    first.step()
    with pytest.raises(StaleRunError):  # the data check is done again, its transition refused
        second.driver.step(stale)
    run = second.runs.get(stale.id)
    seen = [run.state]
    while run.state != RunState.CANARY:
        armed["now"] = True
        step = second.step()  # its transition is stale: it reads the run again
        assert step.run is not None and step.run.revision == run.revision + 1, step.run
        run = step.run
        seen.append(run.state)
    assert seen == [
        RunState.TRAINING,
        RunState.GATING,
        RunState.REGISTERING,
        RunState.REGISTERED,
        RunState.CANARY,
    ]
    assert [r.state for r in taken if r is not None] == seen[1:]  # the first took each step
    kinds = Counter(run_kinds(workspace, run))
    assert kinds == Counter(TRANSITIONS), kinds
    assert versions_of(workspace, run.artifact_sha256) == [run.candidate_version]
    assert canaries_of(workspace) == [run.canary_id]
    assert workspace.verify().size > 0


def test_a_run_left_in_training_trains_again_on_the_same_saved_frame(
    workspace: Workspace, champion: int
) -> None:
    config = manual()
    runner = started_run(workspace, config, seed=24)
    run = step_to(runner, RunState.TRAINING)
    assert run.data is not None
    saved = run.data["fingerprint"]
    # While the process is down, more labelled records arrive: the window is not the same.
    more = records(SyntheticWorld(seed=99), 300, "after", start=5000)
    runner.inbox.ingest(more, wanted_columns(config))
    window = runner.inbox.labelled(config.training.window, FEATURES)
    assert window.fingerprint() != saved

    restarted = LoopRunner(workspace, config)
    after = step_to(restarted, RunState.GATING)

    assert after.data is not None and after.data["fingerprint"] == saved
    assert after.data["frame_sha256"] == run.data["frame_sha256"]
    frame = frame_from_bytes(workspace.artifacts.get(str(after.data["frame_sha256"])))
    assert frame.fingerprint() == saved
    done = step_to(restarted, RunState.CANARY)
    registered = workspace.registry.get(config.model, int(done.candidate_version or 0))
    assert registered.lineage.dataset_fingerprint == saved
    assert Counter(run_kinds(workspace, done)) == Counter(TRANSITIONS)
    assert workspace.verify().size > 0


def workspace_run(workspace: Workspace, run_id: int) -> LoopRun:
    """The run as stored, read as any other process reads it."""
    return RunStore(workspace.store, workspace.log, workspace.clock).get(run_id)
