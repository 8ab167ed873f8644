"""AdaptiveBatcher, driven by events and a fake clock rather than sleeps.

The model is a real callable run on a real thread pool; tests hold it inside a
call with a ``threading.Event`` to make the runtime "busy" and release it when
the scenario is set up. Progress on the event loop is awaited by yielding
(``asyncio.sleep(0)``) until a condition holds, never by wall-clock time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgate.errors import (
    DeadlineExceededError,
    InvalidRequestError,
    ModelFailedError,
    OverloadedError,
)
from mlgate.serving.batcher import AdaptiveBatcher, BatchingConfig, BatchStats, Tensor

T = TypeVar("T")
FAR = 1e9  # a deadline nobody reaches


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Model:
    """Affine on rows (2x + 1); records each call; blocks while ``gate`` is clear."""

    def __init__(self, fn: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.calls: list[dict[str, Tensor]] = []
        self.fn = fn or (lambda inputs: {"y": inputs["x"] * 2 + 1})

    def __call__(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        self.calls.append({name: array.copy() for name, array in inputs.items()})
        assert self.gate.wait(timeout=10), "test never released the model"
        return self.fn(inputs)

    @property
    def rows(self) -> list[int]:
        return [call["x"].shape[0] for call in self.calls]


def x(*values: float, width: int = 1) -> dict[str, Tensor]:
    return {"x": np.repeat(np.asarray(values, dtype=np.float64)[:, None], width, axis=1)}


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def guarded() -> T:
        async with asyncio.timeout(30):  # a safety net against hangs, not a timing assertion
            return await coro

    return asyncio.run(guarded())


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition`` holds (a bounded number of turns)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def settle(*aws: Awaitable[T]) -> list[T | BaseException]:
    return list(await asyncio.gather(*aws, return_exceptions=True))


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=4)
    yield pool
    pool.shutdown(wait=True)


def make(
    model: Model,
    executor: ThreadPoolExecutor,
    clock: FakeClock | None = None,
    on_batch: Callable[[BatchStats], None] | None = None,
    **config: Any,
) -> AdaptiveBatcher:
    return AdaptiveBatcher(
        model, BatchingConfig(**config), executor, clock=clock or FakeClock(), on_batch=on_batch
    )


async def busy(batcher: AdaptiveBatcher, model: Model) -> asyncio.Task[dict[str, Tensor]]:
    """Occupy the only runtime slot with a held one-row call of value -1."""
    model.gate.clear()
    first = asyncio.create_task(batcher.submit(x(-1), FAR))
    await until(lambda: batcher.in_flight == 1)
    return first


def test_lone_request_runs_at_once_without_waiting(executor: ThreadPoolExecutor) -> None:
    model, stats = Model(), list[BatchStats]()

    async def scenario() -> None:
        batcher = make(model, executor, on_batch=stats.append)
        model.gate.clear()
        task = asyncio.create_task(batcher.submit(x(3), FAR))
        # Launched within a few loop turns, with no timer involved and the clock unmoved.
        await until(lambda: batcher.in_flight == 1)
        model.gate.set()
        out = await task
        np.testing.assert_array_equal(out["y"], [[7.0]])
        await batcher.close()

    run(scenario())
    assert model.rows == [1]
    assert stats == [BatchStats(rows=1, requests=1, max_queue_wait_s=0.0, compute_s=0.0)]


def test_requests_arriving_while_busy_coalesce_into_one_call(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        batcher = make(model, executor)
        first = await busy(batcher, model)
        rest = [asyncio.create_task(batcher.submit(x(i), FAR)) for i in range(5)]
        await until(lambda: batcher.queue_depth == 5)
        model.gate.set()
        outs = await asyncio.gather(first, *rest)
        for i, out in enumerate(outs[1:]):
            np.testing.assert_array_equal(out["y"], [[2 * i + 1]])
        await batcher.close()

    run(scenario())
    assert model.rows == [1, 5]


def test_max_wait_window_ends_early_when_the_batch_fills(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        # An hour-long window: only a full batch can send it within the run's safety net.
        batcher = make(model, executor, max_wait_s=3600.0, max_batch_size=3)
        await asyncio.gather(*(batcher.submit(x(i), FAR) for i in range(3)))
        await batcher.close()

    run(scenario())
    assert model.rows == [3]


def test_max_wait_window_expires_for_a_lone_request(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        batcher = make(model, executor, max_wait_s=0.001, max_batch_size=8)
        np.testing.assert_array_equal((await batcher.submit(x(1), FAR))["y"], [[3.0]])
        await batcher.close()

    run(scenario())
    assert model.rows == [1]


def test_max_batch_size_caps_rows_per_call(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        batcher = make(model, executor, max_batch_size=4)
        first = await busy(batcher, model)
        rest = [asyncio.create_task(batcher.submit(x(i), FAR)) for i in range(10)]
        await until(lambda: batcher.queue_depth == 10)
        model.gate.set()
        await asyncio.gather(first, *rest)
        await batcher.close()

    run(scenario())
    assert model.rows == [1, 4, 4, 2]


def test_request_bigger_than_the_cap_runs_alone_unsplit(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        batcher = make(model, executor, max_batch_size=4)
        first = await busy(batcher, model)
        big = asyncio.create_task(batcher.submit(x(*range(10)), FAR))
        small = asyncio.create_task(batcher.submit(x(100), FAR))
        await until(lambda: batcher.queue_depth == 2)
        model.gate.set()
        _, big_out, small_out = await asyncio.gather(first, big, small)
        np.testing.assert_array_equal(big_out["y"][:, 0], np.arange(10) * 2 + 1)
        np.testing.assert_array_equal(small_out["y"], [[201.0]])
        await batcher.close()

    run(scenario())
    assert model.rows == [1, 10, 1]


def test_unbatched_config_sends_one_request_per_call(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        batcher = make(model, executor, max_batch_size=1)
        first = await busy(batcher, model)
        rest = [asyncio.create_task(batcher.submit(x(i), FAR)) for i in range(3)]
        await until(lambda: batcher.queue_depth == 3)
        model.gate.set()
        await asyncio.gather(first, *rest)
        await batcher.close()

    run(scenario())
    assert model.rows == [1, 1, 1, 1]


def test_concurrency_caps_calls_in_flight(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        batcher = make(model, executor, max_concurrency=2)
        model.gate.clear()
        tasks = []
        for i in range(2):
            tasks.append(asyncio.create_task(batcher.submit(x(i), FAR)))
            await until(lambda: batcher.in_flight == len(tasks))
        tasks += [asyncio.create_task(batcher.submit(x(i), FAR)) for i in range(2, 4)]
        await until(lambda: batcher.queue_depth == 2)
        assert batcher.in_flight == 2
        model.gate.set()
        await asyncio.gather(*tasks)
        assert (batcher.in_flight, batcher.queue_depth) == (0, 0)
        await batcher.close()

    run(scenario())
    assert sorted(model.rows) == [1, 1, 2]


def test_full_queue_sheds_immediately_with_retry_after(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        batcher = make(model, executor, max_queue=2)
        first = await busy(batcher, model)
        queued = [asyncio.create_task(batcher.submit(x(i), FAR)) for i in range(2)]
        await until(lambda: batcher.queue_depth == 2)
        with pytest.raises(OverloadedError, match="queue is full") as shed:
            await batcher.submit(x(5), FAR)
        assert shed.value.retry_after_s >= 1.0
        model.gate.set()
        await asyncio.gather(first, *queued)
        await batcher.close()

    run(scenario())


def test_full_queue_first_drops_waiters_that_went_away(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        batcher = make(model, executor, max_queue=2)
        first = await busy(batcher, model)
        gone = [asyncio.create_task(batcher.submit(x(i), FAR)) for i in range(2)]
        await until(lambda: batcher.queue_depth == 2)
        for task in gone:
            task.cancel()
        await settle(*gone)
        late = asyncio.create_task(batcher.submit(x(5), FAR))
        await until(lambda: batcher.queue_depth == 1)
        model.gate.set()
        await asyncio.gather(first, late)
        await batcher.close()

    run(scenario())
    assert model.rows == [1, 1]


def test_failing_hook_and_dead_executor_never_leave_waiters_hanging() -> None:
    def hook(stats: BatchStats) -> None:
        raise RuntimeError("metrics backend down")

    model = Model()
    pool = ThreadPoolExecutor(max_workers=1)

    async def scenario() -> None:
        batcher = make(model, pool, on_batch=hook)
        np.testing.assert_array_equal((await batcher.submit(x(1), FAR))["y"], [[3.0]])
        pool.shutdown(wait=True)
        with pytest.raises(ModelFailedError, match="RuntimeError"):
            await batcher.submit(x(2), FAR)
        await batcher.close()

    run(scenario())
    assert model.rows == [1]


def test_expired_request_is_dropped_before_compute(executor: ThreadPoolExecutor) -> None:
    model, clock = Model(), FakeClock()

    async def scenario() -> None:
        batcher = make(model, executor, clock)
        with pytest.raises(DeadlineExceededError):
            await batcher.submit(x(41), clock.now)  # already spent: refused at the door
        first = await busy(batcher, model)
        late = asyncio.create_task(batcher.submit(x(42), clock.now + 1.0))
        ok = asyncio.create_task(batcher.submit(x(43), clock.now + 5.0))
        await until(lambda: batcher.queue_depth == 2)
        clock.now += 2.0
        model.gate.set()
        results = await settle(first, late, ok)
        # It never reached the model, and no call is stuck ahead of it: shed, not timed out.
        assert isinstance(results[1], OverloadedError) and results[1].reason == "deadline"
        assert "in the queue" in str(results[1])
        assert not isinstance(results[2], BaseException)
        await batcher.close()

    run(scenario())
    seen = np.concatenate([call["x"][:, 0] for call in model.calls])
    assert 42.0 not in seen and 41.0 not in seen
    assert model.rows == [1, 1]


def test_a_request_left_with_less_time_than_a_call_takes_is_shed_before_compute(
    executor: ThreadPoolExecutor,
) -> None:
    clock = FakeClock()

    def fn(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        clock.now += 10.0  # every call takes 10 s of the batcher's clock (real: instant)
        return {"y": inputs["x"] * 2 + 1}

    model = Model(fn)

    async def scenario() -> None:
        batcher = make(model, executor, clock, inline_budget_s=0.0)
        await batcher.submit(x(1), FAR)  # timed: a call takes 10 s
        first = await busy(batcher, model)
        late = asyncio.create_task(batcher.submit(x(2), clock.now + 100.0))
        await until(lambda: batcher.queue_depth == 1)
        clock.now += 85.0
        model.gate.set()  # the held call ends 10 s later: `late` has 5 s left
        results = await settle(first, late)
        assert not isinstance(results[0], BaseException)
        assert isinstance(results[1], OverloadedError) and results[1].reason == "deadline"
        assert "less than a model call takes" in str(results[1])
        # A model slower than a whole budget is still called: only so can it be timed,
        # and its circuit breaker learn that it is slow.
        out = await batcher.submit(x(3), clock.now + 5.0)
        assert out["y"].tolist() == [[7.0]]
        await batcher.close()

    run(scenario())
    assert [call["x"][0, 0] for call in model.calls] == [1.0, -1.0, 3.0]


def test_a_request_whose_batch_runs_past_its_deadline_fails_and_the_model_call_finishes(
    executor: ThreadPoolExecutor,
) -> None:
    model, clock = Model(), FakeClock()

    async def scenario() -> None:
        batcher = make(model, executor, clock)
        model.gate.clear()
        # 20 ms of the loop's time: the expiry timer, not a poll, fails the waiter.
        with pytest.raises(DeadlineExceededError, match="its batch had run"):
            await batcher.submit(x(7), clock.now + 0.02)
        assert batcher.in_flight == 1  # the call itself cannot be stopped; it finishes
        model.gate.set()
        assert (await batcher.submit(x(8), FAR))["y"].tolist() == [[17.0]]
        await batcher.close()

    run(scenario())
    assert model.rows == [1, 1]


def test_a_queued_request_fails_at_its_deadline_even_while_the_model_hangs(
    executor: ThreadPoolExecutor,
) -> None:
    model, clock = Model(), FakeClock()

    async def scenario() -> None:
        batcher = make(model, executor, clock)
        first = await busy(batcher, model)
        # Behind a call that has run its whole budget, the model is the problem: 504.
        with pytest.raises(DeadlineExceededError, match="in the queue behind a model call"):
            await batcher.submit(x(42), clock.now + 0.02)
        model.gate.set()
        assert (await first)["y"].tolist() == [[-1.0]]
        assert (await batcher.submit(x(1), FAR))["y"].tolist() == [[3.0]]
        await batcher.close()

    run(scenario())
    seen = np.concatenate([call["x"][:, 0] for call in model.calls])
    assert 42.0 not in seen  # it expired before its batch could run


def test_enqueue_returns_a_future_settled_without_a_task(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        batcher = make(model, executor)
        future = batcher.enqueue(x(2), FAR)
        assert isinstance(future, asyncio.Future) and not isinstance(future, asyncio.Task)
        assert (await future)["y"].tolist() == [[5.0]]
        await batcher.close()

    run(scenario())


def test_cancelled_waiter_is_skipped(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        batcher = make(model, executor)
        first = await busy(batcher, model)
        gone = asyncio.create_task(batcher.submit(x(7), FAR))
        kept = asyncio.create_task(batcher.submit(x(8), FAR))
        await until(lambda: batcher.queue_depth == 2)
        gone.cancel()
        model.gate.set()
        results = await settle(first, gone, kept)
        assert isinstance(results[1], asyncio.CancelledError)
        await batcher.close()

    run(scenario())
    assert [call["x"][:, 0].tolist() for call in model.calls] == [[-1.0], [8.0]]


def test_a_model_error_fails_only_the_request_that_caused_it(
    executor: ThreadPoolExecutor,
) -> None:
    def fn(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        if (inputs["x"] == 13).any():
            raise ValueError("unlucky row")
        return {"y": inputs["x"] * 2 + 1}

    model = Model(fn)

    async def scenario() -> None:
        batcher = make(model, executor)
        first = await busy(batcher, model)
        doomed = [asyncio.create_task(batcher.submit(x(v), FAR)) for v in (1, 13, 2)]
        await until(lambda: batcher.queue_depth == 3)
        model.gate.set()
        results = await settle(first, *doomed)
        _, one, unlucky, two = results
        assert isinstance(unlucky, ModelFailedError)
        assert str(unlucky) == "model failed: ValueError: unlucky row"
        assert isinstance(unlucky.__cause__, ValueError)
        # The requests that merely shared the batch are answered one by one.
        np.testing.assert_array_equal(one["y"], [[3.0]])
        np.testing.assert_array_equal(two["y"], [[5.0]])
        np.testing.assert_array_equal((await batcher.submit(x(4), FAR))["y"], [[9.0]])
        await batcher.close()

    run(scenario())
    assert model.rows == [1, 3, 1, 1, 1, 1]


def test_outputs_with_the_wrong_row_count_fail_every_waiter(executor: ThreadPoolExecutor) -> None:
    model = Model(lambda inputs: {"y": np.zeros((inputs["x"].shape[0] + 1, 1))})

    async def scenario() -> None:
        batcher = make(model, executor)
        first = await busy(batcher, model)
        rest = [asyncio.create_task(batcher.submit(x(v), FAR)) for v in (1, 2)]
        await until(lambda: batcher.queue_depth == 2)
        model.gate.set()
        for error in await settle(first, *rest):
            assert isinstance(error, ModelFailedError)
            assert "cannot be split" in str(error)
        await batcher.close()

    run(scenario())


def test_mismatched_trailing_shapes_run_in_separate_batches(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        batcher = make(model, executor)
        first = await busy(batcher, model)
        a = asyncio.create_task(batcher.submit(x(1, width=2), FAR))
        b = asyncio.create_task(batcher.submit(x(2, width=3), FAR))
        c = asyncio.create_task(batcher.submit(x(3, width=2), FAR))
        d = asyncio.create_task(batcher.submit({"x": np.array([[4]], dtype=np.int32)}, FAR))
        await until(lambda: batcher.queue_depth == 4)
        model.gate.set()
        _, out_a, out_b, out_c, out_d = await asyncio.gather(first, a, b, c, d)
        np.testing.assert_array_equal(out_a["y"], [[3.0, 3.0]])
        np.testing.assert_array_equal(out_b["y"], [[5.0, 5.0, 5.0]])
        np.testing.assert_array_equal(out_c["y"], [[7.0, 7.0]])
        assert out_d["y"].dtype == np.int32
        await batcher.close()

    run(scenario())
    assert [call["x"].shape for call in model.calls] == [(1, 1), (2, 2), (1, 3), (1, 1)]


def test_close_settles_every_waiter(executor: ThreadPoolExecutor) -> None:
    model = Model()

    async def scenario() -> None:
        batcher = make(model, executor)
        first = await busy(batcher, model)
        queued = [asyncio.create_task(batcher.submit(x(i), FAR)) for i in range(3)]
        await until(lambda: batcher.queue_depth == 3)
        closing = asyncio.create_task(batcher.close())
        await until(lambda: all(task.done() for task in queued))
        model.gate.set()  # the call in flight finishes and keeps its result
        await closing
        results = await settle(first, *queued)
        assert isinstance(results[0], dict)
        np.testing.assert_array_equal(results[0]["y"], [[-1.0]])
        for error in results[1:]:
            assert isinstance(error, OverloadedError)
            assert "shutting down" in str(error)
        with pytest.raises(OverloadedError, match="shutting down"):
            await batcher.submit(x(1), FAR)

    run(scenario())
    assert model.rows == [1]


def test_admission_sheds_requests_that_cannot_meet_their_deadline(
    executor: ThreadPoolExecutor,
) -> None:
    clock = FakeClock()

    def fn(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        clock.now += 1.0  # every call takes one fake second
        return {"y": inputs["x"]}

    model = Model(fn)

    async def scenario() -> None:
        batcher = make(model, executor, clock)
        # No observation yet: even a tight deadline is admitted.
        await batcher.submit(x(0), clock.now + 0.5)
        # Idle runtime: admitted although one call is known to take 1 s.
        await batcher.submit(x(1), clock.now + 0.5)
        first = await busy(batcher, model)
        with pytest.raises(OverloadedError, match="exceeds the remaining deadline") as shed:
            await batcher.submit(x(2), clock.now + 0.5)
        assert shed.value.retry_after_s >= 1.0
        roomy = asyncio.create_task(batcher.submit(x(3), clock.now + 100.0))
        await until(lambda: batcher.queue_depth == 1)
        model.gate.set()
        await asyncio.gather(first, roomy)
        await batcher.close()

    run(scenario())
    assert [call["x"][0, 0] for call in model.calls] == [0.0, 1.0, -1.0, 3.0]


def test_on_batch_reports_queue_wait_and_compute_time(executor: ThreadPoolExecutor) -> None:
    clock, stats = FakeClock(), list[BatchStats]()

    def fn(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        clock.now += 0.25
        return {"y": inputs["x"]}

    model = Model(fn)

    async def scenario() -> None:
        batcher = make(model, executor, clock, on_batch=stats.append)
        first = await busy(batcher, model)
        rest = [asyncio.create_task(batcher.submit(x(i, i), FAR)) for i in range(2)]
        await until(lambda: batcher.queue_depth == 2)
        clock.now += 1.0
        model.gate.set()
        await asyncio.gather(first, *rest)
        await batcher.close()

    run(scenario())
    assert stats == [BatchStats(1, 1, 0.0, 1.25), BatchStats(4, 2, 1.25, 0.25)]


@pytest.mark.parametrize(
    "inputs",
    [{}, {"x": np.float64(1.0)}, {"x": np.zeros((2, 1)), "z": np.zeros((3, 1))}, x()],
    ids=["empty", "scalar", "ragged", "no-rows"],
)
def test_malformed_inputs_are_refused(executor: ThreadPoolExecutor, inputs: Any) -> None:
    batcher = make(Model(), executor)
    with pytest.raises(InvalidRequestError):
        run(batcher.submit(inputs, FAR))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_batch_size", 0),
        ("max_queue", -1),
        ("max_concurrency", 1.5),
        ("max_wait_s", -0.1),
        ("max_wait_s", float("nan")),
    ],
)
def test_config_is_validated(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        BatchingConfig(**{field: value})


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=12),
    max_batch_size=st.integers(min_value=1, max_value=16),
    max_concurrency=st.integers(min_value=1, max_value=3),
)
def test_each_request_gets_its_own_rows_back(
    sizes: list[int], max_batch_size: int, max_concurrency: int
) -> None:
    offsets = np.cumsum([0, *sizes])
    requests = [
        {"x": np.arange(lo, hi, dtype=np.float64)[:, None] * [1.0, -1.0]}
        for lo, hi in zip(offsets[:-1], offsets[1:], strict=True)
    ]
    model = Model()

    async def scenario() -> list[dict[str, Tensor]]:
        with ThreadPoolExecutor(max_workers=max_concurrency) as pool:
            batcher = make(
                model, pool, max_batch_size=max_batch_size, max_concurrency=max_concurrency
            )
            outs = await asyncio.gather(*(batcher.submit(r, FAR) for r in requests))
            await batcher.close()
            return outs

    outs = run(scenario())
    for request, out in zip(requests, outs, strict=True):
        np.testing.assert_array_equal(out["y"], request["x"] * 2 + 1)
    for call in model.calls:
        rows = call["x"].shape[0]
        alone = any(np.array_equal(call["x"], request["x"]) for request in requests)
        assert rows <= max_batch_size or alone


# --- small models on the event loop ----------------------------------------------------------


class ThreadRecorder:
    """A model that notes which thread ran each call; a negative row is a slow call.

    Slowness is told through the batcher's fake clock, so no test here depends on how
    fast this machine happens to be.
    """

    def __init__(self, clock: FakeClock) -> None:
        self.threads: list[str] = []
        self.clock = clock

    def __call__(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        self.threads.append(threading.current_thread().name)
        if (inputs["x"] < 0).any():
            self.clock.now += 1.0  # one fake second: over any inline budget
        return {"y": inputs["x"] * 2 + 1}


def _loop_thread() -> str:
    return threading.current_thread().name


def test_a_fast_model_moves_onto_the_loop_and_a_slow_call_sends_it_back() -> None:
    clock = FakeClock()
    model = ThreadRecorder(clock)

    async def scenario() -> None:
        with ThreadPoolExecutor(2, thread_name_prefix="infer") as pool:
            batcher = AdaptiveBatcher(model, BatchingConfig(), pool, clock=clock)
            for i in range(40):
                assert (await batcher.submit(x(i), FAR))["y"].tolist() == [[2.0 * i + 1]]
            assert batcher.runs_inline
            assert model.threads[0].startswith("infer")  # observed on the threads first
            assert model.threads[-1] == _loop_thread()
            # A bigger batch than any seen so far is not extrapolated to: a thread runs it.
            await batcher.submit(x(*range(5)), FAR)
            assert model.threads[-1].startswith("infer")
            # So is one huge row: size is counted in elements, not rows.
            await batcher.submit(x(1, width=1000), FAR)
            assert model.threads[-1].startswith("infer")
            # One slow call (inline, since one row was always fast) ends inline running.
            assert (await batcher.submit(x(-1), FAR))["y"].tolist() == [[-1.0]]
            assert not batcher.runs_inline
            await batcher.submit(x(1), FAR)
            assert model.threads[-1].startswith("infer")
            await batcher.close()

    run(scenario())


def test_an_inline_budget_of_zero_keeps_every_call_on_the_threads() -> None:
    clock = FakeClock()
    model = ThreadRecorder(clock)

    async def scenario() -> None:
        with ThreadPoolExecutor(2, thread_name_prefix="infer") as pool:
            config = BatchingConfig(inline_budget_s=0.0)
            batcher = AdaptiveBatcher(model, config, pool, clock=clock)
            for i in range(40):
                await batcher.submit(x(i), FAR)
            assert not batcher.runs_inline
            await batcher.close()

    run(scenario())
    assert all(name.startswith("infer") for name in model.threads)


def test_a_model_failing_inline_fails_only_its_request() -> None:
    def fn(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        if (inputs["x"] == 13).any():
            raise ValueError("unlucky row")
        return {"y": inputs["x"] * 2 + 1}

    model = Model(fn)

    async def scenario() -> None:
        with ThreadPoolExecutor(2) as pool:
            batcher = AdaptiveBatcher(model, BatchingConfig(), pool, clock=FakeClock())
            for i in range(40):
                await batcher.submit(x(i % 10), FAR)
            assert batcher.runs_inline
            with pytest.raises(ModelFailedError, match="unlucky row"):
                await batcher.submit(x(13), FAR)
            assert (await batcher.submit(x(2), FAR))["y"].tolist() == [[5.0]]
            await batcher.close()

    run(scenario())


def test_a_model_raising_a_base_exception_inline_fails_its_request_and_frees_the_slot() -> None:
    class Interrupted(BaseException):
        pass

    def fn(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        if (inputs["x"] == 13).any():
            raise Interrupted("not an Exception")
        return {"y": inputs["x"] * 2 + 1}

    async def scenario() -> None:
        with ThreadPoolExecutor(2) as pool:
            batcher = AdaptiveBatcher(Model(fn), BatchingConfig(), pool, clock=FakeClock())
            for i in range(40):
                await batcher.submit(x(i % 10), FAR)
            assert batcher.runs_inline
            with pytest.raises(ModelFailedError, match="Interrupted"):
                await batcher.submit(x(13), FAR)
            assert batcher.in_flight == 0
            assert (await batcher.submit(x(2), FAR))["y"].tolist() == [[5.0]]
            await batcher.close()

    run(scenario())


def test_rare_calls_a_little_over_budget_keep_a_model_inline_but_frequent_ones_do_not() -> None:
    clock = FakeClock()

    def fn(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        if (inputs["x"] == 7).any():
            clock.now += 0.003  # 3 ms: over the 2 ms budget, as a GIL hand-off makes it
        return {"y": inputs["x"] * 2 + 1}

    async def scenario() -> None:
        with ThreadPoolExecutor(2) as pool:
            batcher = AdaptiveBatcher(Model(fn), BatchingConfig(), pool, clock=clock)
            for i in range(40):
                await batcher.submit(x(i % 5), FAR)
            for _ in range(3):  # three outliers in the window: tolerated
                await batcher.submit(x(7), FAR)
                assert batcher.runs_inline
            await batcher.submit(x(7), FAR)  # a fourth: the model is slow, not unlucky
            assert not batcher.runs_inline
            await batcher.close()

    run(scenario())


def test_calls_slow_only_because_the_os_preempted_them_keep_a_model_inline() -> None:
    clock = FakeClock()
    usage = [0.0, 0]  # this thread's CPU seconds and preemptions, as the fake OS tells them

    def fn(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        if (inputs["x"] == 7).any():
            clock.now += 0.003  # 3 ms of wall time: over the 2 ms budget...
            usage[0] += 0.0001  # ...of which the model ran 0.1 ms
            usage[1] += 1  # and the OS preempted it
        return {"y": inputs["x"] * 2 + 1}

    async def scenario(thread_usage: Any) -> bool:
        with ThreadPoolExecutor(2) as pool:
            batcher = AdaptiveBatcher(
                Model(fn), BatchingConfig(), pool, clock=clock, thread_usage=thread_usage
            )
            for i in range(40):
                await batcher.submit(x(i % 5), FAR)
            for _ in range(10):
                await batcher.submit(x(7), FAR)
            inline = batcher.runs_inline
            await batcher.close()
            return inline

    assert run(scenario(lambda: (usage[0], usage[1])))
    assert not run(scenario(None))  # judged by wall time alone, the model is slow
