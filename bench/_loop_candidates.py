"""Worse and better candidates: does the loop stop the first and pass the second?

Both start the same way: a champion trained on the world before any drift, and 600 clean
labelled records of that world (the first 300 become the monitors' reference). Then the
scenario's records stream in, ``CHUNK`` per runner step, as in :mod:`bench._loop_drift`:
600 (worse) or 700 (better) of them, and more of the same while a run waits for labelled
rows. A run starts on the monitors' alarm, or by hand once those records are in (as a
schedule would start one); the scenario follows it to its verdict:

* **worse**: the world has not changed; the new data, or the trainer, is bad (the kinds
  below). Goal: no such candidate reaches the registry. A run that passes its gates
  counts as promoted: the canary would then only guard against what live traffic shows,
  and the gates' job is to stop it first.
* **better**: the world has changed; the candidate trained on records of the new world
  is genuinely better, which the benchmark checks afterwards on 5,000 fresh rows the loop
  never saw. Promoted here means gates passed, version registered and canary started;
  the canary on live traffic is measured in :mod:`bench._loop_live`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from bench._loop_setup import (
    ACTOR,
    CHUNK,
    ENDPOINT,
    GATE_PASSED,
    RATE,
    RecordClock,
    accuracy,
    as_records,
    candidate_model,
    deploy_champion,
    function_trainer,
    loop_config,
    scenario_workspace,
    truth,
)
from mlgate.loop.gates.report import GateReport
from mlgate.loop.runner import LoopRunner
from mlgate.loop.runs import LoopRun, RunState
from mlgate.loop.sources import wanted_columns
from mlgate.loop.synthetic import SyntheticWorld, World
from mlgate.workspace import Workspace

__all__ = ["WORSE_KINDS", "better_scenario", "verdict", "worse_scenario"]

WORSE_KINDS = (
    "shuffled_labels",  # a trainer whose labels were shuffled against the rows
    "label_noise",  # 10-20% of the window's labels flipped at random
    "dropped_feature",  # a trainer that fits on 5 of the 6 features
    "poisoned_rows",  # a block of copies of a few rows, each with the wrong label
    "zeroed_feature",  # a trainer that fits with one feature blanked to 0
)
_TRAINERS = {
    "shuffled_labels": "bench._loop_trainers:fit_shuffled_labels",
    "dropped_feature": "bench._loop_trainers:fit_without_feature",
    "zeroed_feature": "bench._loop_trainers:fit_zeroed_feature",
}
_CLEAN, _WINDOW, _AFTER = 600, 600, 700
_MAX_STEPS = 200


def _share(low: float, high: float, index: int, count: int) -> float:
    """Spread the ``count`` scenarios of a kind evenly over ``[low, high]``."""
    return (low + high) / 2 if count < 2 else low + (high - low) * index / (count - 1)


def _window(
    kind: str, world: SyntheticWorld, share: float
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """One training window's worth of the scenario's records."""
    if kind == "better":
        return world.rows(_WINDOW, "after")
    if kind == "label_noise":
        return world.rows(_WINDOW, "before", poison=share)
    if kind != "poisoned_rows":
        return world.rows(_WINDOW, "before")
    block = round(share * _WINDOW)
    x, y = world.rows(_WINDOW - block, "before")
    seeds_x, seeds_y = world.rows(5, "before")
    copies = np.resize(np.arange(5), block)
    at = int(np.random.default_rng(len(x)).integers(len(x)))
    return (
        np.concatenate([x[:at], seeds_x[copies], x[at:]]),
        np.concatenate([y[:at], 1 - seeds_y[copies], y[at:]]),
    )


def _chunks(
    kind: str, world: SyntheticWorld, share: float
) -> Iterator[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """The scenario's records, window after window, ``CHUNK`` at a time, for ever."""
    while True:
        x, y = _window(kind, world, share)
        for start in range(0, len(x), CHUNK):
            yield x[start : start + CHUNK], y[start : start + CHUNK]


def _start(runner: LoopRunner, world: SyntheticWorld, clock: RecordClock) -> tuple[int, int]:
    """Feed the clean records in two halves (the first becomes the reference, the second
    shows the performance monitor the champion's usual error), and more while a run their
    monitors started waits for labelled rows; follow any such run to its end. Returns the
    records fed and the runs so far."""
    name, fed = runner.config.name, 0
    for _ in range(_MAX_STEPS):
        active = runner.runs.active(name)
        if fed < _CLEAN or (active is not None and active.state == RunState.TRIGGERED):
            count = _CLEAN // 2 if fed < _CLEAN else CHUNK
            _ingest(runner, clock, as_records(*world.rows(count, "before"), start=fed))
            clock.advance(round(RATE))  # one more second passes: their labels have settled
            fed += count
        elif active is None:
            break
        runner.step()
    return fed, len(runner.runs.list(name, limit=1000))


def _ingest(runner: LoopRunner, clock: RecordClock, records: list[dict[str, Any]]) -> None:
    clock.advance(len(records))  # they arrived over that much time, at RATE a second
    runner.inbox.ingest(records, wanted_columns(runner.config))


def _drive(
    runner: LoopRunner,
    clock: RecordClock,
    chunks: Iterator[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]],
    *,
    start: int,
    first: int,
    until: frozenset[RunState],
) -> tuple[LoopRun, dict[str, Any]]:
    """Stream ``first`` records (more while the run waits for data); follow the run."""
    name = runner.config.name
    known = len(runner.runs.list(name, limit=1000))
    fed, how, started = 0, "manual", time.perf_counter()
    run: LoopRun | None = None
    for _ in range(_MAX_STEPS):
        if run is None and fed >= first:  # no alarm: start it as a schedule would
            runner.trigger("bench: a scheduled retraining")
        elif run is None or run.state == RunState.TRIGGERED:  # no run yet, or it waits
            _ingest(runner, clock, as_records(*next(chunks), start=start + fed))
            fed += CHUNK
        step = runner.step()
        fired = [d for d in step.decisions if d.fire]
        if run is None and fired:
            how = fired[0].signal.kind
        runs = runner.runs.list(name, limit=1000)
        run = runs[0] if len(runs) > known else None  # the newest: the scenario's run
        if run is not None and (not run.active or run.state in until):
            break
    assert run is not None, "the scenario's run never started"
    return run, {"trigger": how, "records": fed, "seconds": time.perf_counter() - started}


def verdict(run: LoopRun) -> tuple[str, list[str]]:
    """Where the run stopped, and which checks stopped it (or where it failed)."""
    if run.state in GATE_PASSED:
        return "passed gates", []
    if run.state == RunState.QUARANTINED:
        return "quarantined", sorted(
            set(re.findall(r"(?:^|; )([a-z_]+)(?:\[[^\]]*\])?: ", run.error or ""))
        )
    if run.state == RunState.REJECTED and run.gate_report is not None:
        failed = GateReport.from_json(run.gate_report).failures
        return "rejected by gates", sorted({check.kind for check in failed})
    if run.state == RunState.FAILED:
        error = run.error or ""
        return "failed", [
            "training" if error.startswith("training failed") else error.split(":")[0]
        ]
    return str(run.state), []


def _truth(
    workspace: Workspace, run: LoopRun, champion: int, world: SyntheticWorld, which: World
) -> dict[str, float | None]:
    x, y = truth(world, which)
    model = candidate_model(workspace, run)
    return {
        "champion_accuracy": accuracy(workspace.registry.load(ENDPOINT, champion)[1], x, y),
        "candidate_accuracy": None if model is None else accuracy(model, x, y),
    }


def worse_scenario(seed: int, kind: str, index: int, count: int) -> dict[str, Any]:
    """A worse candidate of ``kind`` (the ``index``-th of ``count``): where was it stopped?"""
    world = SyntheticWorld(seed)
    share = _share(0.10, 0.20, index, count) if kind == "label_noise" else None
    if kind == "poisoned_rows":
        share = _share(0.10, 0.25, index, count)
    clock = RecordClock()
    with scenario_workspace("worse", clock) as (workspace, _settings):
        champion = deploy_champion(workspace, world)
        sections: dict[str, Any] = {}
        if kind in _TRAINERS:
            sections["training"] = function_trainer(_TRAINERS[kind])
        runner = LoopRunner(workspace, loop_config(**sections), actor=ACTOR)
        start, earlier = _start(runner, world, clock)
        chunks = _chunks(kind, world, share or 0.0)
        run, measured = _drive(runner, clock, chunks, start=start, first=_WINDOW, until=GATE_PASSED)
        stopped, reasons = verdict(run)
        return {
            "seed": seed,
            "kind": kind,
            "share": share,
            "state": str(run.state),
            "stopped": stopped,
            "reasons": reasons,
            "runs_before": earlier,
            **measured,
            **_truth(workspace, run, champion, world, "before"),
        }


def better_scenario(seed: int) -> dict[str, Any]:
    """Clean records after the drift: is the genuinely better candidate promoted?"""
    world = SyntheticWorld(seed)
    clock = RecordClock()
    with scenario_workspace("better", clock) as (workspace, _settings):
        champion = deploy_champion(workspace, world)
        runner = LoopRunner(workspace, loop_config(), actor=ACTOR)
        start, earlier = _start(runner, world, clock)
        until = frozenset({RunState.CANARY, RunState.AWAITING_APPROVAL})
        chunks = _chunks("better", world, 0.0)
        run, measured = _drive(runner, clock, chunks, start=start, first=_AFTER, until=until)
        stopped, reasons = verdict(run)
        return {
            "seed": seed,
            "state": str(run.state),
            "stopped": stopped,
            "reasons": reasons,
            "promoted": run.state == RunState.CANARY and run.candidate_version is not None,
            "runs_before": earlier,
            **measured,
            **_truth(workspace, run, champion, world, "after"),
        }
