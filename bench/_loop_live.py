"""The drift story on live traffic, through the canary to the promotion, as ``mlgate demo``.

One scenario per seed: a real mlgate server in a thread of this process serves the
champion on 127.0.0.1; a client thread (:class:`mlgate.cli._demo_traffic.Traffic`) sends
requests from the synthetic world as fast as the server answers, and posts each label
(and the reward: was the served answer right) 40 requests later. The loop reads what the
endpoint served and the labels from the prediction log (``source: prediction_log``), and
its canary is judged on that same traffic. The world changes at the seeded request index
(once the loop has its reference); from there the scenario counts requests served and
seconds until the first alarm, the trigger, the gate pass, the canary start and the
promotion. Requests keep flowing while the loop trains, so the request counts here depend
on this machine's speed (unlike the records of :mod:`bench._loop_drift`).
"""

from __future__ import annotations

import time
from typing import Any

from bench._loop_setup import (
    ACTOR,
    ENDPOINT,
    GATE_PASSED,
    LIVE_PROMOTION,
    deploy_champion,
    loop_config,
    onset_of,
    scenario_workspace,
)
from mlgate.loop.runs import RunState
from mlgate.loop.synthetic import SyntheticWorld

__all__ = ["live_scenario"]

_POLL_S = 0.05  # between runner steps, as the demo does


def live_scenario(seed: int, *, time_limit_s: float) -> dict[str, Any]:
    """Requests and seconds from the onset to each step of the rollout (or the time limit)."""
    from mlgate.cli._demo_server import background_server
    from mlgate.cli._demo_traffic import Traffic
    from mlgate.loop.runner import LoopRunner

    world = SyntheticWorld(seed)
    onset = onset_of(seed)
    result: dict[str, Any] = {"seed": seed, "onset": onset, "events": {}, "outcome": "time limit"}
    events: dict[str, dict[str, Any]] = result["events"]
    with scenario_workspace("live") as (workspace, settings):
        deploy_champion(workspace, world)
        config = loop_config(
            source={"kind": "prediction_log", "batch_size": 500}, promotion=LIVE_PROMOTION
        )
        with background_server(settings) as url:
            runner = LoopRunner(workspace, config, actor=ACTOR)
            traffic = Traffic(url, ENDPOINT, seed=seed)
            started = time.perf_counter()
            onset_at = 0.0
            alarms_before = 0
            traffic.start()
            try:
                while time.perf_counter() - started < time_limit_s:
                    step = runner.step()
                    drift_at = traffic.drift_at
                    if drift_at is None:
                        alarms_before += len(step.decisions)
                        if runner.reference is not None and traffic.sent >= onset:
                            traffic.set_world("after")
                            onset_at = time.perf_counter()
                        time.sleep(_POLL_S)
                        continue
                    mark = {
                        "requests": traffic.sent - drift_at,
                        "seconds": time.perf_counter() - onset_at,
                    }
                    for decision in step.decisions:
                        events.setdefault("alarm", mark | {"kind": decision.signal.kind})
                        if decision.fire:
                            events.setdefault("triggered", mark)
                    run = step.run
                    if run is not None and run.state in GATE_PASSED:
                        events.setdefault("gate_passed", mark)
                    if run is not None and run.state == RunState.CANARY:
                        events.setdefault("canary_started", mark)
                    if run is not None and run.state == RunState.PROMOTED:
                        events["promoted"] = mark
                        result["outcome"] = "promoted"
                        break
                    time.sleep(_POLL_S)
            finally:
                traffic.stop()
            elapsed = time.perf_counter() - started
        runs = sorted(runner.runs.list(config.name, limit=1000), key=lambda r: r.id)
        result |= {
            "actual_onset": traffic.drift_at,
            "alarms_before_onset": alarms_before,
            "runs": [str(run.state) for run in runs],
            "requests": traffic.sent,
            "requests_per_s": traffic.sent / elapsed if elapsed > 0 else None,
            "client_errors": len(traffic.errors),
        }
        if any(run.state == RunState.ROLLED_BACK for run in runs) and "promoted" not in events:
            result["outcome"] = "rolled back"
    return result
