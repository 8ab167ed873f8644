"""Adaptive request batching for one served model version.

Other servers taught what not to do: MLServer's and Ray Serve's batchers always
wait out their window, so a lone request pays the whole window (single-request
p50 rose from 5 ms to 16 ms); BentoML used its batch window as a shedding
deadline and rejected almost everything. Here a batch goes the moment a runtime
slot is free; requests that arrive while every slot is busy queue up and ride
in the next batch together ("natural batching"), which adds no latency.

The shape of the loop follows ``ray/serve/batching.py``: wait on an event,
cap the batches in flight, skip cancelled waiters, and settle every waiter's
future with a result or an exception so that nothing can hang.

A small model runs on the event loop itself once it has shown it is small: a batch
predicted (from the calls seen so far, at no more input elements than those) to take under
``inline_budget_s`` is called inline, because a thread hop costs two GIL hand-offs
and a loop wake-up, more than a 20-feature logistic regression's whole call; the
hop nearly halved throughput in bench/serving. A model that hangs from its first
call never qualifies (a call must finish to be observed). Calls that ran over the
budget in more than 1 % of the last 256, or one call over 10 budgets, send the model
back to the threads; a rare outlier does not, because another thread holding the
GIL (the prediction-log writer) can stretch any call by a 5 ms switch interval.
That stretch also made "back to the threads" a one-way door: timed on a thread, a
call includes its waits for the GIL, so on a busy server a 0.1 ms model measured
0.4 ms at the median and over budget 40 % of the time, and never ran inline again
(bench/serving's router endpoint ran every call of its three versions on threads and
lost a third of its throughput). So a model sent to the threads gets a second chance
after 1,024 calls there if their median is within half the budget: timed inline
again, it stays only if it really is fast. The default budget is 2 ms: 0.5 ms was
overrun by a 20-feature logistic regression (scikit-learn's ``predict_proba`` alone is
0.1 ms) whenever the server's two cores were also running the load generator.

Deadlines are enforced here too, by one event-loop timer per request that fails
its future when time runs out, whether it is still queued or its batch is
running. That replaced an ``asyncio.timeout`` around every await, which cost 7 %
of the event loop in bench/serving's profile (context manager, task lookups and
cancellation unwinding the caller).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from mlgate.errors import (
    DeadlineExceededError,
    ModelFailedError,
    OverloadedError,
    ServingError,
)
from mlgate.serving._inline import InlinePolicy, ThreadUsage, cpu_if_preempted
from mlgate.serving._model_call import Predict, Tensor, describe, model_failed, run_batch

__all__ = ["AdaptiveBatcher", "BatchStats", "BatchingConfig", "Predict", "Tensor"]

logger = logging.getLogger(__name__)


# Budgets past a day (or infinite) arm no timer: uvloop refuses an infinite one.
_NO_TIMER_BEYOND_S = 86_400.0
# Weight of the newest observation in the throughput and latency averages.
_EWMA_ALPHA = 0.2


@dataclass(frozen=True)
class BatchingConfig:
    """How one model version batches.

    ``max_wait_s`` is an optional extra wait, taken only when a runtime slot is
    free, for more requests to join before the batch goes. The default 0 sends
    at once: batches still form on their own while the runtime is busy.
    ``max_batch_size=1`` turns batching off. ``inline_budget_s`` is the longest call
    that may run on the event loop instead of a thread (see the module docstring); 0
    keeps every call on the threads.
    """

    max_batch_size: int = 64
    max_wait_s: float = 0.0
    max_queue: int = 1024
    max_concurrency: int = 1
    inline_budget_s: float = 0.002

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_queue", "max_concurrency"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"BatchingConfig.{name} must be an integer >= 1, got {value!r}")
        for name in ("max_wait_s", "inline_budget_s"):
            value = getattr(self, name)
            if not 0.0 <= value < float("inf"):
                raise ValueError(f"BatchingConfig.{name} must be finite and >= 0, got {value!r}")


@dataclass(frozen=True)
class BatchStats:
    """What one model call did, for metrics hooks."""

    rows: int
    requests: int
    max_queue_wait_s: float
    compute_s: float


@dataclass(slots=True)
class _Request:
    inputs: dict[str, Tensor]
    rows: int
    key: Hashable  # requests with equal keys can be concatenated along axis 0
    deadline: float
    enqueued_at: float
    future: asyncio.Future[dict[str, Tensor]]
    timer: asyncio.TimerHandle | None = None
    launched_at: float = 0.0  # when its batch went to the model; 0 while queued
    began: list[float] | None = None  # its call's start in a worker thread (monotonic), once begun
    call: int = 0  # which of the batcher's model calls it rides in; 0 while queued


class AdaptiveBatcher:
    """Coalesce concurrent requests into model calls run on ``executor``.

    Admission control: once a batch has been timed, a request whose estimated
    wait (queued rows / observed rows per second, plus one batch latency)
    exceeds its remaining deadline is shed at ``submit`` with OverloadedError,
    so that admitted requests stay inside their deadline. While the runtime is
    idle every request is admitted, so a stale estimate can always be refreshed.
    """

    def __init__(
        self,
        predict: Predict,
        config: BatchingConfig,
        executor: concurrent.futures.Executor,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_batch: Callable[[BatchStats], None] | None = None,
        thread_usage: Callable[[], ThreadUsage] | None = None,
    ) -> None:
        """``thread_usage`` (:func:`mlgate.serving._inline.thread_usage` in a server) lets
        an inline call preempted by the OS be judged by its CPU time (see
        :meth:`~mlgate.serving._inline.InlinePolicy.observe`); without it, by ``clock``."""
        self._predict = predict
        self._config = config
        self._executor = executor
        self._clock = clock
        self._thread_usage = thread_usage
        self._on_batch = on_batch
        self._queue: deque[_Request] = deque()
        self._queued_rows = 0
        self._in_flight = 0
        self._running: set[asyncio.Future[list[dict[str, Tensor] | ModelFailedError]]] = set()
        # id(call) -> [time the worker thread began the call], empty until it has begun
        self._launched: dict[int, list[float]] = {}
        # asyncio primitives bind to a loop on first use, so building here is loop-free.
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._collector: asyncio.Task[None] | None = None
        self._closed = False
        self._rows_per_s: float | None = None  # per runtime slot
        self._latency_s: float | None = None
        self._inline = InlinePolicy(config.inline_budget_s)
        self._calls = 0  # model calls launched so far

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a batch (cancelled ones until they are skipped)."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Model calls running now."""
        return self._in_flight

    @property
    def service_time_s(self) -> float:
        """Running average of one model call's duration (0 before the first call)."""
        return self._latency_s or 0.0

    @property
    def longest_running_s(self) -> float:
        """How long the oldest model call still running has run (0 when none runs).

        Counted from when a worker thread took the call up (monotonic seconds), not from
        when it was queued for one.

        A deadline that expired while a call ran this long points at the model; one
        that expired in the queue points at load. Circuit breakers need the difference.
        """
        began = [start[0] for start in self._launched.values() if len(start) == 1]
        if not began:
            return 0.0
        return time.monotonic() - min(began)

    async def submit(self, inputs: dict[str, Tensor], deadline: float) -> dict[str, Tensor]:
        """Queue ``inputs`` and return this request's rows of the model's outputs.

        ``deadline`` is absolute, in the batcher's clock; past it the call raises
        DeadlineExceededError, whether the request was still queued or running.
        """
        # Cancelling the caller cancels the future; the collector then skips it.
        return await self.enqueue(inputs, deadline)

    def enqueue(
        self, inputs: dict[str, Tensor], deadline: float
    ) -> asyncio.Future[dict[str, Tensor]]:
        """Queue ``inputs`` and return the future of its outputs, for callers that need no task.

        Admission errors raise here; everything after (model failure, deadline) settles
        the future. Shadow calls use this to cost a callback instead of a task.
        """
        if self._closed:
            raise OverloadedError("server is shutting down", reason="shutdown")
        rows, key = describe(inputs)
        now = self._clock()
        if deadline <= now:
            raise DeadlineExceededError(
                f"request deadline passed {(now - deadline) * 1000:.0f} ms before it was queued"
            )
        if len(self._queue) >= self._config.max_queue:
            self._purge()  # clients that went away must not keep the queue full
        if len(self._queue) >= self._config.max_queue:
            raise OverloadedError(
                f"queue is full ({self._config.max_queue} requests); retry later",
                retry_after_s=max(1.0, self._drain_estimate_s()),
            )
        idle = not self._queue and self._in_flight < self._config.max_concurrency
        if not idle and self._rows_per_s is not None:
            wait_s = self._drain_estimate_s()
            if wait_s > deadline - now:
                raise OverloadedError(
                    f"estimated wait {wait_s * 1000:.0f} ms exceeds the remaining deadline "
                    f"{(deadline - now) * 1000:.0f} ms; retry later",
                    retry_after_s=max(1.0, wait_s),
                    reason="deadline",
                )
        loop = asyncio.get_running_loop()
        if self._collector is None or self._collector.done():
            self._collector = loop.create_task(self._collect(), name="mlgate-batcher")
            self._collector.add_done_callback(self._collector_done)
        future: asyncio.Future[dict[str, Tensor]] = loop.create_future()
        request = _Request(inputs, rows, key, deadline, now, future)
        if deadline - now < _NO_TIMER_BEYOND_S:  # the loop's clock; the budget left is the same
            request.timer = loop.call_at(loop.time() + (deadline - now), self._expire, request)
        self._queue.append(request)
        self._queued_rows += rows
        self._wakeup.set()
        return future

    def _expire(self, request: _Request) -> None:
        """Timer callback: the request's deadline has come and it has no answer yet."""
        if request.future.done():
            return
        now = self._clock()
        budget_ms = (request.deadline - request.enqueued_at) * 1000
        ran_s = had_s = None
        if request.began:  # the worker thread has taken its call up
            began = request.began[0]
            ran_s = time.monotonic() - began
            had_s = request.deadline - (now - ran_s)
        if not request.launched_at:
            # Still queued: it stays there, done, and the collector skips it.
            request.future.set_exception(self._shed_in_queue(request, now, expired=True))
            return
        message = (
            f"model did not answer within the {budget_ms:.0f} ms left for it: its batch "
            f"had run {(now - request.launched_at) * 1000:.0f} ms; retry with a longer "
            "deadline or check the model's latency"
        )
        error = DeadlineExceededError(
            message, model_ran_s=ran_s, model_had_s=had_s, model_call=request.call
        )
        request.future.set_exception(error)

    async def close(self) -> None:
        """Stop batching: queued waiters are shed, batches in flight finish."""
        self._closed = True
        collector, self._collector = self._collector, None
        if collector is not None and not collector.done():
            collector.cancel()
            try:
                await collector
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
        self._fail_queued(lambda: OverloadedError("server is shutting down", reason="shutdown"))
        if self._running:
            await asyncio.wait(set(self._running))

    def _drain_estimate_s(self) -> float:
        """Seconds until the queue ahead has run, or 1 s before any observation."""
        if self._rows_per_s is None or self._latency_s is None:
            return 1.0
        rate = self._rows_per_s * self._config.max_concurrency
        return self._queued_rows / rate + self._latency_s

    async def _collect(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._slots.acquire()
            try:
                if self._config.max_wait_s > 0 and self._queued_rows < self._config.max_batch_size:
                    await self._fill_window()
                batch = self._take_batch()
            except BaseException:
                self._slots.release()
                raise
            if batch:
                self._launch(batch)
            else:
                self._slots.release()

    async def _fill_window(self) -> None:
        """Wait up to ``max_wait_s`` (event-loop time) for the batch to fill."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.max_wait_s):
                while self._queued_rows < self._config.max_batch_size:
                    self._wakeup.clear()
                    await self._wakeup.wait()

    def _take_batch(self) -> list[_Request]:
        """Pop the next batch: FIFO among requests that concatenate with the head.

        Cancelled and expired requests are dropped on the way; requests of
        another shape or dtype keep their place for a later batch.
        """
        now, limit, queue = self._clock(), self._config.max_batch_size, self._queue
        batch: list[_Request] = []
        skipped: list[_Request] = []
        rows = 0
        key: Hashable = None
        while queue and rows < limit:
            request = queue.popleft()
            if self._settle_dead(request, now):
                continue
            if batch and request.key != key:
                skipped.append(request)
            elif batch and rows + request.rows > limit:
                queue.appendleft(request)
                break
            else:
                batch.append(request)
                key, rows = request.key, rows + request.rows
                self._queued_rows -= request.rows
        queue.extendleft(reversed(skipped))
        return batch

    def _purge(self) -> None:
        """Drop cancelled and expired requests anywhere in the queue (when it is full)."""
        now = self._clock()
        self._queue = deque(r for r in self._queue if not self._settle_dead(r, now))

    def _settle_dead(self, request: _Request, now: float) -> bool:
        """Whether ``request`` (already out of the queue) is cancelled, expired or too late.

        Too late: it has less time left than a model call takes, though its whole budget
        would have been enough. Run, it would time out with 504 after taking compute from
        requests that can still make it (at twice capacity with a 50 ms deadline, tens of
        such requests per run did); shed now, it is a 503 that costs nothing. A model slower
        than the whole budget is still called, or its circuit breaker could never learn so.
        """
        alive = not request.future.done() and request.deadline > now
        if alive and not self._too_late(request, now):
            return False
        self._queued_rows -= request.rows
        _disarm(request)
        if not request.future.done():
            expired = request.deadline <= now
            request.future.set_exception(self._shed_in_queue(request, now, expired=expired))
        return True

    def _too_late(self, request: _Request, now: float) -> bool:
        call_s = self._latency_s
        if call_s is None:
            return False
        return request.deadline - request.enqueued_at >= call_s > request.deadline - now

    def _shed_in_queue(self, request: _Request, now: float, *, expired: bool) -> ServingError:
        """The error of a request shed before its batch could run (too late or expired).

        Behind a model call that has itself run the request's whole budget, the model is
        the problem: 504, and the circuit breaker counts it (a hang that requests queue
        behind). Otherwise the request waited its turn on a busy server: it never reached
        the model and says nothing about it, so it is shed with 503 and Retry-After, as
        admission would have shed it had it known the wait.
        """
        waited_ms = (now - request.enqueued_at) * 1000
        if not expired:
            return OverloadedError(
                f"request waited {waited_ms:.0f} ms in the queue and has "
                f"{(request.deadline - now) * 1000:.0f} ms left, less than a model call takes "
                f"(about {(self._latency_s or 0.0) * 1000:.0f} ms): the server is overloaded; "
                "retry after the Retry-After interval, with a longer deadline, or on another "
                "replica",
                retry_after_s=1.0,
                reason="deadline",
            )
        running_s = self.longest_running_s
        if running_s > 0 and running_s >= request.deadline - request.enqueued_at:
            return DeadlineExceededError(
                f"request deadline passed after {waited_ms:.0f} ms in the queue behind a "
                f"model call that has run {running_s * 1000:.0f} ms; retry with a longer "
                "deadline or check the model's latency"
            )
        return OverloadedError(
            f"request deadline passed after {waited_ms:.0f} ms in the queue, before its "
            "batch could run: the server is overloaded; retry after the Retry-After "
            "interval, with a longer deadline, or on another replica",
            retry_after_s=1.0,
            reason="deadline",
        )

    def _launch(self, batch: list[_Request]) -> None:
        """Start one model call; ``_finish`` settles its waiters and frees the slot."""
        started = self._clock()
        max_wait = max(started - request.enqueued_at for request in batch)
        self._in_flight += 1
        self._calls += 1
        began: list[float] = []  # the worker appends when it starts: queued time is not the model's
        for request in batch:
            request.launched_at = started
            request.began = began
            request.call = self._calls
        loop = asyncio.get_running_loop()
        inputs = [request.inputs for request in batch]
        rows = [request.rows for request in batch]
        size = sum(array.size for one in inputs for array in one.values())
        if self._inline.allows(size):
            done: asyncio.Future[list[dict[str, Tensor] | ModelFailedError]]
            done = loop.create_future()
            probe = self._thread_usage
            before = probe() if probe is not None else None
            try:
                done.set_result(run_batch(self._predict, inputs, rows))
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # settled like a thread's failure, slot freed
                done.set_exception(model_failed(exc))
            cpu_s = None
            if probe is not None and before is not None:
                cpu_s = cpu_if_preempted(before, probe())
            self._finish(batch, started, max_wait, done, cpu_s=cpu_s)
            return
        try:
            call = loop.run_in_executor(
                self._executor, run_batch, self._predict, inputs, rows, began
            )
        except Exception as exc:  # e.g. the executor was shut down
            self._in_flight -= 1
            self._slots.release()
            _fail(batch, functools.partial(model_failed, exc))
            return
        self._running.add(call)
        self._launched[id(call)] = began
        call.add_done_callback(functools.partial(self._finish, batch, started, max_wait))

    def _finish(
        self,
        batch: list[_Request],
        started: float,
        max_wait: float,
        call: asyncio.Future[list[dict[str, Tensor] | ModelFailedError]],
        *,
        cpu_s: float | None = None,
    ) -> None:
        """``cpu_s``: an inline call's CPU time if the OS preempted it."""
        self._running.discard(call)
        began = self._launched.pop(id(call), None)
        self._in_flight -= 1
        self._slots.release()
        compute_s = self._clock() - started
        rows = sum(request.rows for request in batch)
        # Inline or not is judged on the call alone: a threaded call's time as seen from
        # the loop includes the hop back, which under load is the loop's delay.
        own_s = began[1] - began[0] if began is not None and len(began) == 2 else compute_s
        size = sum(a.size for r in batch for a in r.inputs.values())
        self._inline.observe(size, own_s, cpu_s)
        if call.cancelled():
            _fail(batch, lambda: ModelFailedError("model call was cancelled"))
        elif (error := call.exception()) is not None:
            _fail(batch, lambda: model_failed(error))
        else:
            failed = False
            for request, outcome in zip(batch, call.result(), strict=True):
                _disarm(request)
                if request.future.done():
                    continue
                if isinstance(outcome, ModelFailedError):
                    failed = True
                    request.future.set_exception(model_failed(outcome))
                else:
                    request.future.set_result(outcome)
            if not failed:
                self._observe(rows, compute_s)
        if self._on_batch is not None:
            try:
                self._on_batch(BatchStats(rows, len(batch), max_wait, compute_s))
            except Exception:
                logger.exception("on_batch hook raised; batching continues")

    @property
    def runs_inline(self) -> bool:
        """Whether a one-element batch would run on the event loop now."""
        return self._inline.allows(1)

    def _observe(self, rows: int, compute_s: float) -> None:
        """Fold one successful call into the averages admission control reads."""
        self._latency_s = _ewma(self._latency_s, compute_s)
        if compute_s > 0:  # a clock that did not move says nothing about throughput
            self._rows_per_s = _ewma(self._rows_per_s, rows / compute_s)

    def _fail_queued(self, make: Callable[[], BaseException]) -> None:
        pending = list(self._queue)
        self._queue.clear()
        self._queued_rows = 0
        _fail(pending, make)

    def _collector_done(self, task: asyncio.Task[None]) -> None:
        # The loop only ends by close(); a crash must not leave waiters hanging.
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("batch collector crashed", exc_info=error)
            self._fail_queued(lambda: model_failed(error))


def _fail(batch: list[_Request], make: Callable[[], BaseException]) -> None:
    """Give each waiter its own exception instance, so tracebacks do not mix."""
    for request in batch:
        _disarm(request)
        if not request.future.done():
            request.future.set_exception(make())


def _disarm(request: _Request) -> None:
    if request.timer is not None:
        request.timer.cancel()
        request.timer = None


def _ewma(previous: float | None, value: float) -> float:
    return value if previous is None else previous + _EWMA_ALPHA * (value - previous)
