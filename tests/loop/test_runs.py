"""Runs as stored: one active run per loop, ledgered transitions, lost races refused."""

from __future__ import annotations

import pytest

from mlgate.errors import LoopError
from mlgate.loop.runs import RunState, RunStore, StaleRunError
from mlgate.workspace import Workspace


def store_of(workspace: Workspace) -> RunStore:
    return RunStore(workspace.store, workspace.log, workspace.clock)


def kinds(workspace: Workspace) -> list[str]:
    with workspace.store.read() as conn:
        return [entry.kind for entry in workspace.log.entries(conn, 0)]


def test_a_loop_has_at_most_one_active_run(workspace: Workspace) -> None:
    runs = store_of(workspace)
    first = runs.start("churn", {"kind": "manual"}, actor="t", attributes={}, champion_version=1)
    assert first is not None and first.state == RunState.TRIGGERED and first.revision == 1
    assert (
        runs.start("churn", {"kind": "manual"}, actor="t", attributes={}, champion_version=1)
        is None
    )
    other = runs.start("fraud", {"kind": "drift"}, actor="t", attributes={}, champion_version=None)
    assert other is not None  # another loop is independent
    assert runs.active("churn") == first
    assert kinds(workspace).count("loop.triggered") == 2


def test_transitions_are_ledgered_with_their_origin(workspace: Workspace) -> None:
    runs = store_of(workspace)
    run = runs.start("churn", {"kind": "manual"}, actor="t", attributes={}, champion_version=None)
    assert run is not None
    run = runs.advance(run, RunState.TRAINING, actor="t", changes={"data": {"rows": 10}})
    assert run.state == RunState.TRAINING and run.revision == 2 and run.data == {"rows": 10}
    with workspace.store.read() as conn:
        last = workspace.log.entry(conn, workspace.log.size(conn) - 1).document()
    assert last["kind"] == "loop.data_checked"
    assert last["subject"] == {"loop": "churn", "run": run.id}
    assert last["attributes"]["from_state"] == "triggered"
    failed = runs.advance(run, RunState.FAILED, actor="t", changes={"error": "boom"})
    assert not failed.active and runs.active("churn") is None
    assert workspace.verify().size == len(kinds(workspace))


def test_a_stale_copy_cannot_take_a_step_twice(workspace: Workspace) -> None:
    runs = store_of(workspace)
    run = runs.start("churn", {"kind": "manual"}, actor="t", attributes={}, champion_version=None)
    assert run is not None
    runs.advance(run, RunState.TRAINING, actor="process-a")
    before = kinds(workspace)
    with pytest.raises(StaleRunError, match="moved by another process"):
        runs.advance(run, RunState.QUARANTINED, actor="process-b")
    assert kinds(workspace) == before  # nothing ledgered for the lost race


def test_illegal_transitions_and_unknown_fields_are_refused(workspace: Workspace) -> None:
    runs = store_of(workspace)
    run = runs.start("churn", {"kind": "manual"}, actor="t", attributes={}, champion_version=None)
    assert run is not None
    with pytest.raises(LoopError, match="it cannot become promoted"):
        runs.advance(run, RunState.PROMOTED, actor="t")
    with pytest.raises(LoopError, match=r"\['state'\] cannot be changed"):
        runs.advance(run, RunState.TRAINING, actor="t", changes={"state": "promoted"})
    with pytest.raises(LoopError, match="there is no loop run 999"):
        runs.get(999)
