"""Snapshots: what a policy change keeps loaded, and what it lets go."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mlgate.errors import DeadlineExceededError
from mlgate.serving.runtime import ServingState, VersionRunner
from mlgate.workspace import Workspace
from tests.models import gate, gated_classifier, linear_classifier, register

W = [[1.0, -1.0, 0.5], [0.5, 0.0, -0.5], [-1.0, 1.0, 0.0], [0.25, 0.25, -0.25]]
B = [0.1, -0.2, 0.3]
ROW = np.asarray([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)


def test_moving_the_champion_retires_the_old_runner_and_closes_it_later(
    workspace: Workspace,
) -> None:
    register(workspace, "m", linear_classifier(W, B), champion=True)
    register(workspace, "m", linear_classifier(W, [0.0, 0.0, 9.0]))

    async def scenario() -> None:
        with ThreadPoolExecutor(2) as executor:
            state = ServingState(workspace, executor, poll_interval_s=60, retire_after_s=0.0)
            await state.start()
            old = state.snapshot.endpoint("m").primary
            assert old.version.version == 1
            outputs = await old.predict({"x": ROW}, deadline=float("inf"), timeout_s=1.0)
            assert outputs["probabilities"].shape == (1, 3)

            workspace.registry.move_alias("m", "champion", 2, actor="t")
            await state.refresh()
            new = state.snapshot.endpoint("m").primary
            assert new.version.version == 2
            assert old in [runner for _, runner in state._retired.values()]
            await state._close_retired()
            assert not state._retired, "an idle retired runner is closed once its grace ends"
            # A request still holding the old runner gets a clear refusal, never a hang.
            try:
                await old.predict({"x": ROW}, deadline=float("inf"), timeout_s=1.0)
            except Exception as exc:
                assert "shutting down" in str(exc)
            else:
                raise AssertionError("a closed runner must refuse new work")
            await state.close()

    asyncio.run(scenario())


def test_only_a_model_call_that_ran_the_whole_budget_counts_against_the_circuit(
    workspace: Workspace,
) -> None:
    """Deadlines missed under load leave the breaker closed; a hung model opens it."""
    name = f"runtime-breaker-{uuid.uuid4().hex}"  # gates are process-wide: one per run
    data, trusted = gated_classifier(name)
    register(workspace, "slow", data, trusted_types=trusted, champion=True)
    hung = gate(name)

    async def scenario() -> None:
        with ThreadPoolExecutor(2) as executor:
            state = ServingState(workspace, executor, poll_interval_s=60)
            await state.start()
            runner = state.snapshot.endpoint("slow").primary
            call = asyncio.create_task(runner.predict({"input": ROW}, float("inf"), 1.0))
            assert await asyncio.to_thread(hung.wait_for_calls, 1)
            missed = DeadlineExceededError("deadline")
            # The running call is younger than a 10 s budget: that is load, not sickness.
            for _ in range(10):
                runner.record(missed, timeout_s=10.0)
            assert runner.breaker.state == "closed"
            async with asyncio.timeout(30):  # a net against hangs, not a timing assertion
                while runner.batcher.longest_running_s < 0.01:
                    await asyncio.sleep(0.001)
            # It has now run longer than a 10 ms budget: the model is the problem.
            for _ in range(5):
                runner.record(missed, timeout_s=0.01)
            assert runner.breaker.state == "open"
            hung.opened.set()
            await call
            await state.close()

    asyncio.run(scenario())


@contextlib.asynccontextmanager
async def _timed_runner(workspace: Workspace, name: str) -> AsyncIterator[VersionRunner]:
    """A served linear model's runner, its usual call time learned from five real calls."""
    register(workspace, name, linear_classifier(W, B), champion=True)
    with ThreadPoolExecutor(2) as executor:
        state = ServingState(workspace, executor, poll_interval_s=60)
        await state.start()
        try:
            runner = state.snapshot.endpoint(name).primary
            for _ in range(5):
                await runner.predict({"x": ROW}, float("inf"), 1.0)
            assert runner.batcher.service_time_s > 0
            yield runner
        finally:
            await state.close()


def test_a_deadline_missed_by_a_call_of_its_usual_length_is_load_not_sickness(
    workspace: Workspace,
) -> None:
    """A call that began with most of its budget and ran its usual time is not counted."""

    async def scenario() -> None:
        async with _timed_runner(workspace, "steady") as runner:
            usual = runner.batcher.service_time_s
            # Began with 40 of 50 ms and missed after running its usual time: load.
            for _ in range(10):
                runner.record(late(ran_s=usual, had_s=0.040), timeout_s=0.050)
            assert runner.breaker.state == "closed"
            # Began with its whole budget and ran far longer than ever before: the model.
            for _ in range(5):
                runner.record(late(ran_s=max(0.045, 3 * usual), had_s=0.050), timeout_s=0.050)
            assert runner.breaker.state == "open"

    asyncio.run(scenario())


def late(ran_s: float, had_s: float, call: int | None = None) -> DeadlineExceededError:
    return DeadlineExceededError("deadline", model_ran_s=ran_s, model_had_s=had_s, model_call=call)


def test_the_requests_of_one_slow_call_count_against_the_circuit_once(
    workspace: Workspace,
) -> None:
    """A 64-row batch that ran long is one failure, not 64: one slow call opens nothing."""

    async def scenario() -> None:
        async with _timed_runner(workspace, "batched") as runner:
            slow = max(0.045, 3 * runner.batcher.service_time_s)
            for _ in range(64):  # every request of call 7 missed its deadline
                runner.record(late(ran_s=slow, had_s=0.050, call=7), timeout_s=0.050)
            assert runner.breaker.state == "closed"
            for call in range(8, 12):  # four more slow calls: five in a row
                runner.record(late(ran_s=slow, had_s=0.050, call=call), timeout_s=0.050)
            assert runner.breaker.state == "open"

    asyncio.run(scenario())
