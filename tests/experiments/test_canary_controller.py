"""The canary controller on real stores (SQLite and PostgreSQL), real models and endpoints.

Traffic is simulated without a server: each request is routed by the real :class:`Router`
built from the spec the canary deployed (so the logged route texts are the router's own),
and its outcome is drawn from the version's behaviour and inserted into the real tables.
Time is an injected clock.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgate.errors import CanaryError
from mlgate.experiments.canary import CanaryConfig, CanaryController, JudgeConfig
from mlgate.ledger.events import format_time
from mlgate.serving.endpoints import EndpointStore
from mlgate.serving.router import Router
from mlgate.serving.spec import endpoint_from_json, endpoint_to_json
from mlgate.store.engine import Store
from mlgate.store.schema import canaries, feedback, prediction_log
from mlgate.workspace import Workspace
from tests.models import ACTOR, linear_classifier, register

W1 = [[1.0, -1.0], [0.5, 0.0]]
W2 = [[0.9, -1.0], [0.5, 0.1]]
ENDPOINT = "scorer"
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=60)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta = INTERVAL) -> datetime:
        self.now += delta
        return self.now


@dataclass(frozen=True)
class Behaviour:
    error_rate: float = 0.01
    latency_ms: float = 20.0
    prediction: float = 0.6
    reward_rate: float = 0.3


GOOD = Behaviour()
BAD = Behaviour(error_rate=0.3, latency_ms=60.0)


@dataclass
class Setup:
    ws: Workspace
    clock: Clock
    endpoints: EndpointStore
    controller: CanaryController

    def traffic(self, requests: int, behaviours: dict[int, Behaviour], seed: int = 0) -> None:
        simulate(self.ws, self.endpoints, requests, behaviours, self.clock.now, seed)

    def canary_config(self, **fields: Any) -> CanaryConfig:
        values: dict[str, Any] = {
            "steps": (10, 50, 100),
            "interval_s": INTERVAL.total_seconds(),
            "judge": JudgeConfig(min_samples=30),
        }
        values.update(fields)
        return CanaryConfig(**values)


@pytest.fixture
def setup(workspace: Workspace) -> Setup:
    register(workspace, ENDPOINT, linear_classifier(W1, [0.0, 0.1]), champion=True)
    register(workspace, ENDPOINT, linear_classifier(W2, [0.0, 0.2]))
    clock = Clock()
    endpoints = EndpointStore(workspace.store, workspace.registry, workspace.log, workspace.clock)
    endpoints.deploy(endpoint_from_json({"name": ENDPOINT, "timeout_ms": 250}), actor=ACTOR)
    controller = CanaryController(
        workspace.store, endpoints, workspace.registry, workspace.log, clock
    )
    return Setup(workspace, clock, endpoints, controller)


def simulate(
    ws: Workspace,
    endpoints: EndpointStore,
    requests: int,
    behaviours: dict[int, Behaviour],
    at: datetime,
    seed: int = 0,
) -> None:
    """Route ``requests`` through the deployed spec's real router; log what each version did."""
    deployed = endpoints.get(ENDPOINT)
    assert deployed is not None
    router = Router(deployed.spec, rng=random.Random(seed))
    rng = np.random.default_rng(seed)
    rows, rewards = [], []
    created = format_time(at + timedelta(seconds=1))  # logged just after ``at``
    for index in range(requests):
        plan = router.route({}, None)
        target = plan.targets[0]
        assert isinstance(target, int), "a canary splits between version numbers"
        behaviour = behaviours[target]
        request_id = f"r{seed}-{index}"
        failed = bool(rng.random() < behaviour.error_rate)
        prediction = float(np.clip(rng.normal(behaviour.prediction, 0.05), 0, 1))
        rows.append(
            {
                "request_id": request_id,
                "endpoint": ENDPOINT,
                "version": "-" if failed else str(target),
                "route": plan.reason,
                "status": "error" if failed else "ok",
                "shadow": False,
                "inputs": None,
                "outputs": None if failed else {"probabilities": [[prediction, 1 - prediction]]},
                "latency_ms": float(rng.lognormal(np.log(behaviour.latency_ms), 0.2)),
                "created_at": created,
            }
        )
        if not failed:
            reward = float(rng.random() < behaviour.reward_rate)
            rewards.append(
                {"endpoint": ENDPOINT, "request_id": request_id, "reward": reward, "label": None}
            )
            rewards[-1]["created_at"] = created
    with ws.store.write() as conn:
        conn.execute(prediction_log.insert(), rows)
        if rewards:
            conn.execute(feedback.insert(), rewards)


def ledger_kinds(ws: Workspace, prefix: str = "canary.") -> list[dict[str, Any]]:
    with ws.store.read() as conn:
        documents = [entry.document() for entry in ws.log.entries(conn)]
    return [d for d in documents if d["kind"].startswith(prefix)]


def deployed_json(setup: Setup) -> dict[str, Any]:
    deployed = setup.endpoints.get(ENDPOINT)
    assert deployed is not None
    return endpoint_to_json(deployed.spec)


def weights(setup: Setup) -> dict[int, float]:
    route = deployed_json(setup)["route"]
    return {v["target"]: v["weight"] for v in route["split"]["variants"]}


# -- the happy path ------------------------------------------------------------------


def test_a_good_candidate_is_promoted_step_by_step(setup: Setup) -> None:
    original = deployed_json(setup)
    status = setup.controller.start(ENDPOINT, 2, config=setup.canary_config(), actor="alice")
    assert (status.baseline, status.candidate, status.state) == ("1", "2", "running")
    assert weights(setup) == {1: 90.0, 2: 10.0}
    assert deployed_json(setup)["timeout_ms"] == 250  # the rest of the spec is kept

    setup.traffic(600, {1: GOOD, 2: GOOD}, seed=1)
    assert setup.controller.tick(setup.clock.advance(INTERVAL / 2)) == []  # not due yet
    [decision] = setup.controller.tick(setup.clock.advance(INTERVAL / 2))
    assert decision.action == "stepped" and decision.judgement is not None
    assert decision.judgement.verdict == "pass"
    assert decision.status.percent == 50.0 and weights(setup) == {1: 50.0, 2: 50.0}

    setup.traffic(400, {1: GOOD, 2: GOOD}, seed=2)
    [decision] = setup.controller.tick(setup.clock.advance())
    assert decision.action == "promoted" and decision.status.state == "promoted"
    assert setup.ws.registry.get(ENDPOINT, "champion").version == 2
    assert deployed_json(setup) == original  # routes to champion again: now version 2
    assert setup.controller.tick(setup.clock.advance()) == []  # ended: nothing more

    kinds = [d["kind"] for d in ledger_kinds(setup.ws)]
    assert kinds == [
        "canary.started",
        "canary.judged",
        "canary.step",
        "canary.judged",
        "canary.promoted",
    ]
    judged = ledger_kinds(setup.ws)[1]
    assert judged["attributes"]["verdict"] == "pass" and judged["attributes"]["score"] == "100.00"
    final = setup.controller.status(ENDPOINT)
    assert final is not None and final.last_report is not None
    # The ledger holds the digest of the report the row keeps.
    from mlgate.ledger.events import digest_json

    assert ledger_kinds(setup.ws)[-1]["digests"]["report"] == digest_json(final.last_report)
    moved = [d for d in ledger_kinds(setup.ws, "model.alias_moved") if d["subject"]["version"] == 2]
    assert moved and moved[0]["actor"] == "mlgate:canary"


# -- failures --------------------------------------------------------------------------


def test_a_bad_candidate_is_rolled_back_to_the_original_spec(setup: Setup) -> None:
    original = deployed_json(setup)
    setup.controller.start(ENDPOINT, 2, config=setup.canary_config(), actor="alice")
    setup.traffic(1500, {1: GOOD, 2: BAD}, seed=3)
    [decision] = setup.controller.tick(setup.clock.advance())
    assert decision.action == "rolled_back" and decision.judgement is not None
    assert decision.judgement.verdict == "fail"
    outcomes = {m.name: m.outcome for m in decision.judgement.metrics}
    assert outcomes["error_rate"] == "high" and outcomes["latency"] == "high"
    assert deployed_json(setup) == original
    assert setup.ws.registry.get(ENDPOINT, "champion").version == 1
    assert [d["kind"] for d in ledger_kinds(setup.ws)][-1] == "canary.rolled_back"


def test_failures_below_the_limit_keep_the_step(setup: Setup) -> None:
    config = setup.canary_config(failure_limit=2)
    setup.controller.start(ENDPOINT, 2, config=config, actor="alice")
    setup.traffic(1500, {1: GOOD, 2: BAD}, seed=4)
    [first] = setup.controller.tick(setup.clock.advance())
    assert (first.action, first.status.state, first.status.failures) == ("failed", "running", 1)
    assert weights(setup) == {1: 90.0, 2: 10.0}
    [second] = setup.controller.tick(setup.clock.advance())
    assert (second.action, second.status.state) == ("rolled_back", "rolled_back")


# -- no data, pauses, resume ---------------------------------------------------------------


def test_no_traffic_is_not_enough_data_then_held_until_resumed(setup: Setup) -> None:
    config = setup.canary_config(inconclusive_limit=2)
    setup.controller.start(ENDPOINT, 2, config=config, actor="alice")
    [first] = setup.controller.tick(setup.clock.advance())
    assert (first.action, first.status.state) == ("paused", "paused")
    assert first.judgement is not None and first.judgement.score is None
    assert first.judgement.reason.startswith("not enough data")
    assert weights(setup) == {1: 90.0, 2: 10.0}  # no verdict: traffic unchanged
    [second] = setup.controller.tick(setup.clock.advance())
    assert (second.action, second.status.state) == ("held", "held")
    assert second.status.next_judgement_at is None
    setup.traffic(600, {1: GOOD, 2: GOOD}, seed=5)
    assert setup.controller.tick(setup.clock.advance()) == []  # held: waits for an operator

    resumed = setup.controller.resume(ENDPOINT, actor="bob")
    assert (resumed.state, resumed.inconclusive) == ("running", 0)
    assert setup.controller.tick(setup.clock.now) == []  # judged interval_s after the resume
    [third] = setup.controller.tick(setup.clock.advance())
    assert third.action == "stepped"
    paused = [d for d in ledger_kinds(setup.ws) if d["kind"] == "canary.paused"]
    assert [d["attributes"]["held"] for d in paused] == [False, True]
    resumes = [d for d in ledger_kinds(setup.ws) if d["kind"] == "canary.resumed"]
    assert resumes[0]["actor"] == "bob"


def test_an_operator_can_hold_a_canary(setup: Setup) -> None:
    setup.controller.start(ENDPOINT, 2, config=setup.canary_config(), actor="alice")
    held = setup.controller.pause(ENDPOINT, actor="bob")
    assert held.state == "held"
    setup.traffic(600, {1: GOOD, 2: GOOD}, seed=6)
    assert setup.controller.tick(setup.clock.advance()) == []
    with pytest.raises(CanaryError, match="cannot pause the canary of 'scorer': it is held"):
        setup.controller.pause(ENDPOINT, actor="bob")
    assert setup.controller.resume(ENDPOINT, actor="bob").state == "running"
    with pytest.raises(CanaryError, match="cannot resume the canary of 'scorer': it is running"):
        setup.controller.resume(ENDPOINT, actor="bob")


# -- abort ---------------------------------------------------------------------------------


def test_abort_restores_the_original_spec_at_once(setup: Setup) -> None:
    original = deployed_json(setup)
    setup.controller.start(ENDPOINT, 2, config=setup.canary_config(), actor="alice")
    aborted = setup.controller.abort(ENDPOINT, actor="bob")
    assert aborted.state == "aborted" and aborted.percent == 0.0
    assert deployed_json(setup) == original
    last = ledger_kinds(setup.ws)[-1]
    assert (last["kind"], last["actor"], last["attributes"]["reason"]) == (
        "canary.aborted",
        "bob",
        "operator",
    )
    with pytest.raises(CanaryError, match="has no active canary to abort"):
        setup.controller.abort(ENDPOINT, actor="bob")
    # Another canary may start once the first has ended.
    again = setup.controller.start(ENDPOINT, 2, config=setup.canary_config(), actor="alice")
    assert again.id != aborted.id and again.active


# -- refusals --------------------------------------------------------------------------------


def test_start_refuses_what_it_cannot_do(setup: Setup) -> None:
    config = setup.canary_config()
    with pytest.raises(CanaryError, match=r"candidate 9 is not a version of scorer.*no version 9"):
        setup.controller.start(ENDPOINT, 9, config=config, actor="alice")
    with pytest.raises(CanaryError, match="candidate 'beta' is not a version"):
        setup.controller.start(ENDPOINT, "beta", config=config, actor="alice")
    with pytest.raises(CanaryError, match="both scorer version 1"):
        setup.controller.start(ENDPOINT, "champion", config=config, actor="alice")
    with pytest.raises(CanaryError, match="no deployed endpoint 'nowhere'"):
        setup.controller.start("nowhere", 2, config=config, actor="alice")
    with pytest.raises(CanaryError, match="strictly increasing"):
        setup.controller.start(ENDPOINT, 2, config=CanaryConfig(steps=(50, 10, 100)), actor="alice")
    first = setup.controller.start(ENDPOINT, 2, config=config, actor="alice")
    with pytest.raises(CanaryError, match=rf"already has an active canary \(#{first.id}"):
        setup.controller.start(ENDPOINT, 2, config=config, actor="alice")
    assert [d["kind"] for d in ledger_kinds(setup.ws)] == ["canary.started"]


def test_start_refuses_an_endpoint_that_is_already_split(setup: Setup) -> None:
    spec = {"name": ENDPOINT, "route": {"split": {"variants": [
        {"target": 1, "weight": 50}, {"target": 2, "weight": 50}]}}}  # fmt: skip
    setup.endpoints.deploy(endpoint_from_json(spec), actor=ACTOR)
    with pytest.raises(CanaryError, match="routes by split; a canary starts from"):
        setup.controller.start(ENDPOINT, 2, actor="alice")


# -- several processes, crashes, hand deploys -------------------------------------------


class PausingStore(Store):
    """The real store, whose ``pause_at``-th read waits until the test releases it.

    Stands for a second server process that was descheduled between reading a canary and
    committing its judgement.
    """

    def __init__(self, store: Store, pause_at: int) -> None:
        super().__init__(store.engine)
        self.reads = 0
        self.pause_at = pause_at
        self.paused = threading.Event()
        self.release = threading.Event()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        self.reads += 1
        if self.reads == self.pause_at:
            self.paused.set()
            assert self.release.wait(10.0)
        with super().read() as conn:
            yield conn


def test_two_processes_ticking_at_once_take_a_step_once(setup: Setup) -> None:
    setup.controller.start(ENDPOINT, 2, config=setup.canary_config(), actor="alice")
    setup.traffic(600, {1: GOOD, 2: GOOD}, seed=7)
    now = setup.clock.advance()
    # B reads the canary (read 1), then pauses before reading its samples (read 2).
    slow = PausingStore(setup.ws.store, pause_at=2)
    other = CanaryController(slow, setup.endpoints, setup.ws.registry, setup.ws.log, setup.clock)
    found: list[Any] = []
    thread = threading.Thread(target=lambda: found.extend(other.tick(now)))
    thread.start()
    assert slow.paused.wait(10.0)
    decisions = setup.controller.tick(now)  # A judges and steps meanwhile
    slow.release.set()
    thread.join(10.0)
    assert [d.action for d in decisions] == ["stepped"]
    assert found == []  # B's judgement lost the revision race: nothing committed
    kinds = [d["kind"] for d in ledger_kinds(setup.ws)]
    assert kinds.count("canary.step") == 1 and kinds.count("canary.judged") == 1
    assert weights(setup) == {1: 50.0, 2: 50.0}
    deploys = ledger_kinds(setup.ws, "endpoint.deployed")
    assert len(deploys) == 3  # the original, the 10% split, the 50% split


def test_many_processes_ticking_concurrently_take_a_step_once(setup: Setup) -> None:
    setup.controller.start(ENDPOINT, 2, config=setup.canary_config(), actor="alice")
    setup.traffic(600, {1: GOOD, 2: GOOD}, seed=8)
    now = setup.clock.advance()
    controllers = [
        CanaryController(
            setup.ws.store, setup.endpoints, setup.ws.registry, setup.ws.log, setup.clock
        )
        for _ in range(4)
    ]
    barrier = threading.Barrier(len(controllers))
    results: list[list[Any]] = [[] for _ in controllers]

    def run(index: int) -> None:
        barrier.wait()
        results[index] = controllers[index].tick(now)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(controllers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30.0)
    assert sum(len(r) for r in results) == 1
    assert [d["kind"] for d in ledger_kinds(setup.ws)].count("canary.step") == 1
    assert weights(setup) == {1: 50.0, 2: 50.0}


def test_a_step_committed_but_never_deployed_is_finished_by_a_later_tick(setup: Setup) -> None:
    start = setup.controller.start(ENDPOINT, 2, config=setup.canary_config(), actor="alice")
    # What a process that died between its commit and its deploy leaves behind:
    with setup.ws.store.write() as conn:
        conn.execute(
            canaries.update()
            .where(canaries.c.id == start.id)
            .values(step_index=1, revision=start.revision + 1)
        )
    assert setup.controller.tick(setup.clock.now) == []
    assert weights(setup) == {1: 90.0, 2: 10.0}  # within the grace period: left to its owner
    setup.controller.tick(setup.clock.advance(timedelta(seconds=31)))
    assert weights(setup) == {1: 50.0, 2: 50.0}
    status = setup.controller.status(ENDPOINT)
    assert status is not None and status.state == "running"


def test_a_hand_deploy_during_a_canary_takes_the_endpoint_back(setup: Setup) -> None:
    setup.controller.start(ENDPOINT, 2, config=setup.canary_config(), actor="alice")
    by_hand = endpoint_from_json({"name": ENDPOINT, "route": 1})
    setup.endpoints.deploy(by_hand, actor="carol")
    [decision] = setup.controller.tick(setup.clock.advance(timedelta(seconds=1)))
    assert (decision.action, decision.status.state) == ("taken_over", "aborted")
    assert deployed_json(setup) == endpoint_to_json(by_hand)  # theirs is kept
    assert ledger_kinds(setup.ws)[-1]["attributes"]["reason"] == "taken_over"


# -- status ------------------------------------------------------------------------------


def test_status_and_list_are_json(setup: Setup) -> None:
    import json

    assert setup.controller.status(ENDPOINT) is None
    started = setup.controller.start(
        ENDPOINT, 2, config=setup.canary_config(sticky_key="user"), actor="alice"
    )
    document = json.loads(json.dumps(started.to_json(), allow_nan=False))
    assert document["state"] == "running" and document["percent"] == 10.0
    assert document["steps"] == [10.0, 50.0, 100.0] and document["model"] == ENDPOINT
    assert document["next_judgement_at"] == format_time(START + INTERVAL)
    assert CanaryConfig.from_json(document["config"]) == started.config
    assert deployed_json(setup)["route"]["split"]["sticky_key"] == "user"
    assert [s.id for s in setup.controller.list()] == [started.id]
    assert [s.id for s in setup.controller.list(active_only=True)] == [started.id]
    setup.controller.abort(ENDPOINT, actor="bob")
    assert setup.controller.list(active_only=True) == []


def test_the_controller_builds_from_a_workspace(setup: Setup) -> None:
    controller = CanaryController.from_workspace(setup.ws)
    assert controller.status(ENDPOINT) is None
    assert controller.tick() == []
    with setup.ws.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(canaries)).scalar() == 0
