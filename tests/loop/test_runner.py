"""The loop runner on real stores: drift → trigger → data check → train → gates → register.

Records go into the inbox as any source would deliver them; the runner is stepped by hand
so each test can look at the state between steps. The canary part needs served traffic
and lives in test_loop_end_to_end.py.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mlgate.loop.runner import LoopRunner
from mlgate.loop.runs import RunState
from mlgate.loop.sources import wanted_columns
from mlgate.loop.synthetic import SyntheticWorld
from mlgate.store.schema import loop_records, model_versions
from mlgate.workspace import Workspace
from tests.loop.conftest import BASE_LOOP, loop_config, records


def config_training() -> dict[str, Any]:
    training = {k: v for k, v in BASE_LOOP["training"].items() if k != "estimator"}
    return training


def ledger_kinds(workspace: Workspace) -> list[str]:
    with workspace.store.read() as conn:
        return [entry.kind for entry in workspace.log.entries(conn, 0)]


def step_until(runner: LoopRunner, done: Any, steps: int = 40) -> None:
    for _ in range(steps):
        runner.step()
        if done():
            return
    raise AssertionError("the runner did not get there in time")


def versions(workspace: Workspace) -> list[int]:
    with workspace.store.read() as conn:
        return [int(v) for v in conn.execute(sa.select(model_versions.c.version)).scalars()]


def test_drift_retrains_gates_and_registers_a_better_model(
    workspace: Workspace, champion: int
) -> None:
    config = loop_config()
    runner = LoopRunner(workspace, config)
    world = SyntheticWorld(seed=5)
    wanted = wanted_columns(config)
    runner.inbox.ingest(records(world, 400, "before", start=0), wanted)
    runner.step()
    assert runner.reference is not None and len(runner.reference) == 300  # first min_rows
    assert runner.runs.active(config.name) is None  # the world has not moved: no run

    runner.inbox.ingest(records(world, 300, "after", start=400), wanted)
    runner.step()  # the change is seen: the run waits for records of the new world
    run = runner.runs.list(config.name)[0]
    assert run.state == RunState.TRIGGERED and run.trigger["inbox_seq"] == runner.inbox.tail()
    runner.inbox.ingest(records(world, 700, "after", start=700), wanted)
    step_until(
        runner,
        lambda: (
            (r := runner.runs.list(config.name))
            and not r[0].active
            or (r and r[0].state == RunState.CANARY)
        ),
    )
    run = runner.runs.list(config.name)[0]
    assert run.trigger["kind"] in ("drift", "performance")
    assert run.state == RunState.CANARY, run.error
    assert run.candidate_version == champion + 1
    assert run.gate_report is not None and run.gate_report["passed"] is True
    assert run.metrics is not None and run.metrics["holdout_accuracy"] > 0.8
    registered = workspace.registry.get("risk", run.candidate_version)
    assert registered.tags == {"loop": "risk-loop", "loop_run": str(run.id)}
    assert registered.lineage.dataset_fingerprint == run.data["fingerprint"]  # type: ignore[index]
    assert registered.lineage.parent_version == champion
    kinds = ledger_kinds(workspace)
    for kind in (
        "monitor.alarm",
        "loop.triggered",
        "loop.data_checked",
        "loop.trained",
        "loop.gated",
        "loop.registered",
        "loop.canary_started",
        "canary.started",
    ):
        assert kind in kinds, kind
    assert workspace.verify().size == len(kinds)


def test_poisoned_labels_are_quarantined_and_never_trained_on(
    workspace: Workspace, champion: int
) -> None:
    config = loop_config(triggers={"on": ["manual"]})
    runner = LoopRunner(workspace, config)
    world = SyntheticWorld(seed=6)
    wanted = wanted_columns(config)
    runner.inbox.ingest(records(world, 400, "before", start=0), wanted)
    runner.step()
    runner.inbox.ingest(records(world, 600, "before", start=400, poison=0.4), wanted)
    assert runner.trigger("operator saw bad labels").fire
    runner.step()
    run = runner.runs.list(config.name)[0]
    assert run.state == RunState.QUARANTINED
    assert "label_flip" in (run.error or "")
    with workspace.store.read() as conn:
        quarantined = conn.execute(
            sa.select(sa.func.count()).where(loop_records.c.quarantined_by == run.id)
        ).scalar_one()
    assert quarantined == 600  # the whole window, recent 600
    assert versions(workspace) == [champion]  # nothing trained, nothing registered
    frame = runner.inbox.labelled(config.training.window, config.features)
    assert set(frame.record_ids).isdisjoint(f"r{i}" for i in range(400, 1000))
    assert "loop.quarantined" in ledger_kinds(workspace)


def test_a_worse_candidate_is_rejected_by_the_gates(workspace: Workspace, champion: int) -> None:
    # Trained on the same world with a tenth of the signal: it cannot beat the champion.
    config = loop_config(
        triggers={"on": ["manual"]},
        training={**config_training(), "trainer": "tests.loop.trainers_for_tests:fit_on_noise"},
        replace=("training",),
    )
    runner = LoopRunner(workspace, config)
    world = SyntheticWorld(seed=7)
    runner.inbox.ingest(records(world, 700, "before", start=0), wanted_columns(config))
    runner.step()
    runner.trigger()
    step_until(runner, lambda: not runner.runs.list(config.name)[0].active)
    run = runner.runs.list(config.name)[0]
    assert run.state == RunState.REJECTED, run.error
    assert run.gate_report is not None and run.gate_report["passed"] is False
    assert run.gate_digest is not None and run.gate_digest.startswith("sha256:")
    assert versions(workspace) == [champion]


def test_no_gate_configured_promotes_nothing(workspace: Workspace, champion: int) -> None:
    config = loop_config(triggers={"on": ["manual"]}, gates=None)
    runner = LoopRunner(workspace, config)
    world = SyntheticWorld(seed=8)
    runner.inbox.ingest(records(world, 400, "before", start=0), wanted_columns(config))
    runner.inbox.ingest(records(world, 700, "after", start=400), wanted_columns(config))
    runner.step()
    runner.trigger()
    step_until(runner, lambda: not runner.runs.list(config.name)[0].active)
    run = runner.runs.list(config.name)[0]
    assert run.state == RunState.REJECTED
    assert "no_gate" in str(run.gate_report)
    assert versions(workspace) == [champion]


def test_labels_that_never_arrive_fail_the_run_after_the_timeout(
    workspace: Workspace, champion: int
) -> None:
    config = loop_config(
        triggers={"on": ["manual"]}, training={"label_timeout_s": 0.2, "min_rows": 300}
    )
    runner = LoopRunner(workspace, config)
    world = SyntheticWorld(seed=9)
    unlabelled = [
        {k: v for k, v in r.items() if k != "label"} for r in records(world, 500, "after", start=0)
    ]
    runner.inbox.ingest(unlabelled, wanted_columns(config))
    runner.trigger()
    runner.step()
    assert runner.runs.list(config.name)[0].state == RunState.TRIGGERED  # waiting for labels
    import time

    time.sleep(0.3)
    runner.step()
    run = runner.runs.list(config.name)[0]
    assert run.state == RunState.FAILED
    assert "labels never arrived" in (run.error or "")


def test_a_schedule_starts_runs_with_no_alarm_and_every_decision_is_ledgered(
    workspace: Workspace, champion: int
) -> None:
    config = loop_config(triggers={"on": ["schedule", "manual"], "every_s": 3600, "cooldown_s": 0})
    runner = LoopRunner(workspace, config)
    world = SyntheticWorld(seed=10)
    runner.inbox.ingest(records(world, 400, "before", start=0), wanted_columns(config))
    first = runner.step()
    assert [d.signal.kind for d in first.decisions if d.fire] == ["schedule"]
    run = runner.runs.list(config.name)[0]
    assert run.trigger["kind"] == "schedule"
    second = runner.step()  # within the hour: the schedule is not due again
    assert not [d for d in second.decisions if d.signal.kind == "schedule"]
    manual = runner.trigger("while a run is active")
    assert not manual.fire and f"run {run.id} is still active" in manual.reason
    with workspace.store.read() as conn:
        documents = [e.document() for e in workspace.log.entries(conn, 0)]
    suppressed = [d for d in documents if d["kind"] == "loop.suppressed"]
    assert suppressed[-1]["attributes"]["reason"] == manual.reason
    assert suppressed[-1]["attributes"]["signal"] == "manual"


def test_a_drift_that_persists_after_a_failed_run_starts_another(
    workspace: Workspace, champion: int
) -> None:
    # The first run's trainer learns nothing, so the gates reject it; the world stays
    # moved, and the re-armed monitors must say so again.
    config = loop_config(
        training={**config_training(), "trainer": "tests.loop.trainers_for_tests:fit_on_noise"},
        replace=("training",),
    )
    runner = LoopRunner(workspace, config)
    world = SyntheticWorld(seed=14)
    wanted = wanted_columns(config)
    runner.inbox.ingest(records(world, 400, "before", start=0), wanted)
    runner.step()
    start = 400
    armed = runner.monitors
    rearmed = False
    for _ in range(30):
        runner.inbox.ingest(records(world, 200, "after", start=start), wanted)
        start += 200
        step = runner.step()
        if step.run is not None and step.run.state == RunState.REJECTED:
            # the run that ended without a champion re-armed the monitors, fresh
            rearmed = runner.monitors is not armed and runner.monitors is not None
            assert runner.monitors is not None and runner.monitors.drift.records_seen == 0
        armed = runner.monitors
        if len(runner.runs.list(config.name)) >= 2:
            break
    assert rearmed
    runs = runner.runs.list(config.name)
    assert len(runs) >= 2, [r.to_json() for r in runs]
    assert runs[-1].state == RunState.REJECTED
    assert runs[0].trigger["kind"] in ("drift", "performance")
