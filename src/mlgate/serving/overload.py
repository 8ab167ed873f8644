"""Adaptive concurrency limits: refuse at the door what the server cannot answer in time.

The batcher sheds a request whose deadline it cannot meet, but only after the request
has been read, parsed and checked, and when the event loop itself is the bottleneck (a
cheap model, twice the traffic the process can parse) that is too late: every answer,
admitted or not, comes back late. Measured by bench/serving at twice capacity, with
128 paced connections: admitted p99 of 7 s and not one 503, because the backlog sat in
the clients while each request the server did see was answered in 16 ms.

So each endpoint gets a limit on requests in flight, adapted the way TCP adapts its
window (AIMD; the same idea as Netflix's concurrency-limits and Envoy's adaptive
concurrency filter): every ``window_s`` the mean latency of the requests answered in
the window is compared with a target; over it, the limit shrinks by ``_DECREASE``;
under it, and if the limit was actually reached, it grows. A request over the limit is
refused before its body is read, with a prebuilt 503 that costs about a third of an
answer, so refusals free the CPU that admitted requests need and every client hears
back quickly, either way.

The target is ``target_latency_s + 2 x service time + loop lag``, but never above
``deadline x`` :data:`DEADLINE_SHARE` (unless service time and loop lag alone exceed it):
the endpoint's deadline is its SLA, and a mean near the deadline puts the tail past it.
Without this cap a 50 ms endpoint whose model's batches took 27 ms steered towards 64 ms
and never refused at the door at twice capacity; requests missed their deadline inside
instead (measured in bench/serving: a ninth of capacity answered in time). The service
time is what the endpoint's model calls take (the batchers' running average), not what
requests wait: a model that needs 30 ms per call is not "overloaded" at 30 ms. The loop lag
(:class:`LoopLag`) is the time every request waits for the event loop's round, whatever
the limit: a limit cut for latency it cannot remove collapsed to its minimum and
starved the endpoint (measured with 512 clients, most of them refused). Learning a
no-load latency from the requests themselves instead drifts upward during a long
overload, exactly when the limit must hold. The limit starts small and grows while
latency allows (TCP's slow start), so a burst at start-up cannot overshoot.

A request admitted here but shed further in (the batcher's deadline estimate, a full
queue) or timed out counts as having taken the endpoint's whole deadline: it is congestion,
as a lost packet is to TCP, in proportion to how many there are. Counted by their own
latency, those fast 503s pulled the mean down and the limit up, so every request was read
and parsed only to be refused late: at twice a compute-bound model's capacity a 50 ms
endpoint answered 1 request in 30 s and shed 112,841 after parsing them. (Cutting the
window on any single one instead starved a cheap model's endpoint: 5 % of capacity.)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable

__all__ = ["DEADLINE_SHARE", "ConcurrencyLimit", "LoopLag"]

_DECREASE_AT_MOST = 0.9  # one window over target cuts at least this much...
_DECREASE_AT_LEAST = 0.5  # ...and at most this much (a cut in proportion to the excess)
_INCREASE_BELOW_HALF = 1.2  # well under target: grow fast
DEADLINE_SHARE = 0.4
"""The window's mean latency is steered to at most this share of the endpoint's deadline."""


class ConcurrencyLimit:
    """One endpoint's limit on requests in flight; ``acquire``/``release`` around each.

    ``target_latency_s`` 0 turns the limit off (every acquire succeeds).
    """

    def __init__(
        self,
        *,
        target_latency_s: float = 0.010,
        window_s: float = 0.05,
        initial: int = 16,
        minimum: int = 2,
        maximum: int = 4096,
        service_time: Callable[[], float] = lambda: 0.0,
        loop_lag: Callable[[], float] = lambda: 0.0,
        deadline: Callable[[], float] = lambda: math.inf,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not target_latency_s >= 0.0 or not window_s > 0.0 or not 1 <= minimum <= maximum:
            raise ValueError(
                "need target_latency_s >= 0, window_s > 0 and 1 <= minimum <= maximum; got "
                f"{target_latency_s}, {window_s}, {minimum}, {maximum}"
            )
        self._target_s = target_latency_s
        self._window_s = window_s
        self._min = minimum
        self._max = maximum
        self._clock = clock
        self._service_time = service_time
        self._loop_lag = loop_lag
        self._deadline = deadline
        self._limit = float(min(max(initial, minimum), maximum))
        self._in_flight = 0
        self._peak = 0  # most in flight during the window
        self._sum_s = 0.0
        self._count = 0
        self._window_end = clock() + window_s

    @property
    def enabled(self) -> bool:
        return self._target_s > 0.0

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def target_s(self) -> float:
        """The latency the limit steers the window mean towards now."""
        service, lag = self._service_time(), self._loop_lag()
        cap = max(DEADLINE_SHARE * self._deadline(), service + lag)
        return min(self._target_s + 2.0 * service + lag, cap)

    def acquire(self) -> bool:
        """Take a slot; False means refuse the request now (503)."""
        if self.enabled and self._in_flight >= int(self._limit):
            return False
        self._in_flight += 1
        if self._in_flight > self._peak:
            self._peak = self._in_flight
        return True

    def release(self, latency_s: float, *, shed: bool = False) -> None:
        """Give the slot back with how long the request took from ``acquire``.

        ``shed``: the request was refused or timed out after admission here; it counts
        as having taken the endpoint's deadline (see above).
        """
        self._in_flight -= 1
        if shed:
            deadline = self._deadline()
            if math.isfinite(deadline):
                latency_s = max(latency_s, deadline)
        self._sum_s += latency_s
        self._count += 1
        now = self._clock()
        if now >= self._window_end:
            self._adapt()
            self._window_end = now + self._window_s

    def _adapt(self) -> None:
        """One AIMD step on the window just ended."""
        mean = self._sum_s / self._count
        target = self.target_s
        if mean > target:
            cut = min(_DECREASE_AT_MOST, max(_DECREASE_AT_LEAST, target / mean))
            self._limit = max(float(self._min), self._limit * cut)
        elif self._peak >= int(self._limit) // 2:  # grow only a limit that was in use
            grown = self._limit + 1.0
            if mean < target / 2:
                grown = max(grown, self._limit * _INCREASE_BELOW_HALF)
            self._limit = min(float(self._max), grown)
        self._sum_s, self._count, self._peak = 0.0, 0, self._in_flight


class LoopLag:
    """How late the event loop runs a timer: the wait every request pays for its round.

    A running average of the lateness of a ticker that should fire every ``interval_s``.
    """

    def __init__(
        self, *, interval_s: float = 0.01, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not interval_s > 0.0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self._interval_s = interval_s
        self._clock = clock
        self._lag_s = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def lag_s(self) -> float:
        return self._lag_s

    def observe(self, lateness_s: float) -> None:
        self._lag_s += 0.2 * (max(0.0, lateness_s) - self._lag_s)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._tick(), name="mlgate-loop-lag")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _tick(self) -> None:
        while True:
            before = self._clock()
            await asyncio.sleep(self._interval_s)
            self.observe(self._clock() - before - self._interval_s)
