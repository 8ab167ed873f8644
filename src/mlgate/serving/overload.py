"""Shedding at the door while the event loop falls behind.

The batcher sheds requests whose deadline it cannot meet, but only once a request
has been read, parsed and checked, and when the event loop itself is the bottleneck
(a cheap model, twice the traffic the process can parse) that is too late: requests
wait in socket buffers before any of our code sees them, so every answer, admitted or
not, comes back late. Measured by bench/serving at twice capacity: admitted p99 above
12 s with no shedding at all.

The signal is the loop's lag: how late a timer that should fire every ``interval_s``
actually fires. While it exceeds ``target_lag_s`` (for ``patience`` ticks in a row, so
that one garbage-collection pause or a neighbour's burst on a shared CPU does not
count as overload) the share of inference requests
refused at once, before their body is read, grows multiplicatively; while the loop
keeps up it decays by a fixed step. That is AIMD, as in TCP congestion control, on
the admitted share: quick to cut, slow to re-open, so the loop settles near its
target instead of oscillating. A refusal costs a header parse and a 503 with
``Retry-After``, a fraction of an answer, which is what frees the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

__all__ = ["LoadShedder"]

# Admitted share kept after one tick over target, and share re-opened per tick under it.
_CUT = 0.75
_REOPEN = 0.01
# Never refuse everything: admitted requests keep the lag measurement honest.
_MAX_SHED = 0.95


class LoadShedder:
    """Decides, per inference request and before reading it, whether to refuse it.

    ``target_lag_s`` 0 turns shedding at the door off (the batcher still sheds).
    """

    def __init__(
        self,
        *,
        target_lag_s: float = 0.015,
        interval_s: float = 0.005,
        patience: int = 3,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if not target_lag_s >= 0.0 or not interval_s > 0.0:
            raise ValueError(
                f"target_lag_s must be >= 0 and interval_s > 0, got {target_lag_s}, {interval_s}"
            )
        if patience < 1:
            raise ValueError(f"patience must be >= 1 tick, got {patience}")
        self._target_lag_s = target_lag_s
        self._interval_s = interval_s
        self._patience = patience
        self._late_ticks = 0
        self._clock = clock
        self._rng = rng or random.Random()
        self._shed_share = 0.0
        self._lag_s = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._target_lag_s > 0.0

    @property
    def shed_share(self) -> float:
        """The share of inference requests refused at the door right now."""
        return self._shed_share

    @property
    def lag_s(self) -> float:
        """The latest measured event-loop lag."""
        return self._lag_s

    def admit(self) -> bool:
        """False: answer 503 now, without reading the request."""
        share = self._shed_share
        return share == 0.0 or self._rng.random() >= share

    def observe(self, lag_s: float) -> None:
        """Fold one lag measurement into the shed share (the AIMD step)."""
        self._lag_s = lag_s
        if lag_s > self._target_lag_s:
            self._late_ticks += 1
            if self._late_ticks >= self._patience:
                self._shed_share = min(_MAX_SHED, 1.0 - (1.0 - self._shed_share) * _CUT)
            return
        self._late_ticks = 0
        if self._shed_share > 0.0:
            self._shed_share = max(0.0, self._shed_share - _REOPEN)

    async def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._watch(), name="mlgate-load-shedder")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self) -> None:
        while True:
            before = self._clock()
            await asyncio.sleep(self._interval_s)
            self.observe(max(0.0, self._clock() - before - self._interval_s))
