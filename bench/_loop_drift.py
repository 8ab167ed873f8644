"""Drift at a known record: how long the loop takes to see it, start a run, pass its gates.

One scenario per seed, no server: labelled records go into the inbox ``CHUNK`` at a time,
one chunk per :meth:`LoopRunner.step`, the world "before" up to the seeded onset record
and "after" from there. A chunk is ingested only while no run is active or the active one
waits for labelled rows, so the records columns count the data the loop needed, not
records that happened to arrive while it was training; the seconds are wall-clock from
the onset chunk's ingestion and include the training (a child process per run). The
workspace's clock moves with the records, 50 a second
(:class:`~bench._loop_setup.RecordClock`), so labels reach the performance monitor one
chunk after their records on any machine. The scenario ends when a run that passed its
gates has been registered and its canary started (the canary needs live traffic: see
:mod:`bench._loop_live`), or when ``budget`` records after the onset brought none.
"""

from __future__ import annotations

import time
from typing import Any

from bench._loop_setup import (
    ACTOR,
    CHUNK,
    ENDPOINT,
    GATE_PASSED,
    RecordClock,
    accuracy,
    as_records,
    candidate_model,
    deploy_champion,
    loop_config,
    onset_of,
    scenario_workspace,
    truth,
)
from mlgate.loop.runner import LoopRunner
from mlgate.loop.runs import LoopRun, RunState
from mlgate.loop.sources import wanted_columns
from mlgate.loop.synthetic import SyntheticWorld
from mlgate.workspace import Workspace

__all__ = ["drift_scenario"]

_MAX_STEPS = 2000  # a guard against a run that never ends; never reached in practice


def _chunk(world: SyntheticWorld, fed: int, onset: int) -> list[dict[str, Any]]:
    """The next ``CHUNK`` records, switching world exactly at ``onset``."""
    before = max(0, min(CHUNK, onset - fed))
    parts = []
    if before:
        parts.append(world.rows(before, "before"))
    if CHUNK - before:
        parts.append(world.rows(CHUNK - before, "after"))
    records: list[dict[str, Any]] = []
    for x, y in parts:
        records += as_records(x, y, fed + len(records))
    return records


def drift_scenario(seed: int, *, budget: int) -> dict[str, Any]:
    """Records and seconds from the onset to the first alarm, the trigger, the gate pass."""
    world = SyntheticWorld(seed)
    onset = onset_of(seed)
    result: dict[str, Any] = {"seed": seed, "onset": onset, "events": {}}
    events: dict[str, dict[str, Any]] = result["events"]
    clock = RecordClock()
    with scenario_workspace("drift", clock) as (workspace, _settings):
        champion = deploy_champion(workspace, world)
        config = loop_config()
        runner = LoopRunner(workspace, config, actor=ACTOR)
        wanted = wanted_columns(config)
        fed, started_at = 0, 0.0
        alarms_before = runs_before = 0
        first_run_after: int | None = None
        for _ in range(_MAX_STEPS):
            active = runner.runs.active(config.name)
            if active is None or active.state == RunState.TRIGGERED:  # waiting for data
                if fed >= onset + budget:
                    break
                if fed <= onset < fed + CHUNK:
                    started_at = time.perf_counter()
                    first_run_after = len(runner.runs.list(config.name, limit=1000)) + 1
                clock.advance(CHUNK)
                runner.inbox.ingest(_chunk(world, fed, onset), wanted)
                fed += CHUNK
            step = runner.step()
            after, seconds = fed - onset, time.perf_counter() - started_at
            mark: dict[str, Any] = {"records": after, "seconds": seconds}
            for decision in step.decisions:
                if after <= 0:
                    alarms_before += 1
                    runs_before += decision.fire
                    continue
                events.setdefault("alarm", mark | {"kind": decision.signal.kind})
                if decision.fire:
                    events.setdefault("triggered", mark)
            run = step.run
            if after > 0 and run is not None and run.state in GATE_PASSED:
                events.setdefault("gate_passed", mark)
                if run.state == RunState.CANARY:
                    events["registered"] = mark
                    break
        x, y = truth(world, "after")
        champion_model = workspace.registry.load(ENDPOINT, champion)[1]
        result["champion_accuracy_after"] = accuracy(champion_model, x, y)
        runs = sorted(runner.runs.list(config.name, limit=1000), key=lambda r: r.id)
        result["runs"] = [
            {
                "state": str(run.state),
                "after_onset": first_run_after is not None and run.id >= first_run_after,
                "candidate_accuracy_after": _truth_of(workspace, run, x, y),
            }
            for run in runs
        ]
        result |= {"alarms_before_onset": alarms_before, "runs_before_onset": runs_before}
    return result


def _truth_of(workspace: Workspace, run: LoopRun, x: Any, y: Any) -> float | None:
    """The run's candidate's accuracy on fresh rows of the new world (None: no candidate)."""
    model = candidate_model(workspace, run)
    return None if model is None else accuracy(model, x, y)
