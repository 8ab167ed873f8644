"""When a model may run on the event loop instead of a thread.

The reasons and the rule are in :mod:`mlgate.serving.batcher`'s docstring; the numbers
are the constants below.
"""

from __future__ import annotations

import resource  # Unix; RUSAGE_THREAD is Linux's
import statistics
import time
from collections import deque

__all__ = ["InlinePolicy", "ThreadUsage", "cpu_if_preempted", "thread_usage"]

# (CPU seconds this thread has run, times the OS has preempted it)
ThreadUsage = tuple[float, int]

_INLINE_AFTER = 32
_SLOW_WINDOW = 256
_SLOW_ALLOWED = 3
_HARD_FACTOR = 10.0
_RETRY_AFTER = 1024
_RETRY_MEDIAN = 0.5
_RUSAGE_THREAD: int | None = getattr(resource, "RUSAGE_THREAD", None)  # else: wall time only


class InlinePolicy:
    """Learns from every finished call whether the next ones may run inline."""

    def __init__(self, budget_s: float) -> None:
        self._budget_s = budget_s
        self._calls = 0
        self._slow: deque[bool] = deque(maxlen=_SLOW_WINDOW)  # recent calls over budget
        self._slow_count = 0
        self._hard_miss = False  # the last call ran far over budget
        self._size = 0  # input elements of the largest batch seen inside the budget
        self._recent: deque[float] = deque(maxlen=_SLOW_WINDOW)  # recent call durations
        self._since_retry = 0  # calls kept off the loop since the last second chance

    def allows(self, size: int) -> bool:
        """``size``: input elements of the batch; rows alone would let one huge row in."""
        return (
            self._budget_s > 0.0
            and self._calls >= _INLINE_AFTER
            and not self._hard_miss
            and self._slow_count <= _SLOW_ALLOWED
            and size <= self._size
        )

    def observe(self, size: int, seconds: float, preempted_cpu_s: float | None = None) -> None:
        """Every finished call, failed ones too, with its own duration.

        ``preempted_cpu_s``: the call's CPU time, given when the OS preempted it. The
        process was then not running at all for part of the call, which costs the loop
        the same whether the model runs inline or not, so the CPU time counts instead
        (up to 10 budgets of wall time: no preemption explains more). On a server whose
        cores also ran other processes, 40 of 42 inline calls over a 2 ms budget had
        been preempted and one had used 2 ms of CPU. A model that sleeps or blocks gives
        the CPU up voluntarily, so it is still judged by its wall time.
        """
        if preempted_cpu_s is not None and seconds <= _HARD_FACTOR * self._budget_s:
            seconds = min(seconds, preempted_cpu_s)
        slow = seconds > self._budget_s
        self._calls += 1
        if len(self._slow) == _SLOW_WINDOW:
            self._slow_count -= self._slow[0]
        self._slow.append(slow)
        self._slow_count += slow
        self._hard_miss = seconds > _HARD_FACTOR * self._budget_s
        if not slow:
            self._size = max(self._size, size)
        elif self._hard_miss or self._slow_count > _SLOW_ALLOWED:
            # never extrapolate past a size that was really too slow
            self._size = min(self._size, size - 1)
        self._recent.append(seconds)
        if not (self._hard_miss or self._slow_count > _SLOW_ALLOWED):
            self._since_retry = 0
            return
        self._since_retry += 1
        if (
            self._since_retry >= _RETRY_AFTER
            and statistics.median(self._recent) <= _RETRY_MEDIAN * self._budget_s
        ):
            self._second_chance()

    def _second_chance(self) -> None:
        self._slow.clear()
        self._slow_count = 0
        self._hard_miss = False
        self._since_retry = 0


def thread_usage() -> ThreadUsage:
    """This thread's CPU time and its involuntary context switches (0 where unknown)."""
    switches = 0 if _RUSAGE_THREAD is None else resource.getrusage(_RUSAGE_THREAD).ru_nivcsw
    return time.thread_time(), switches


def cpu_if_preempted(before: ThreadUsage, after: ThreadUsage) -> float | None:
    """The CPU time between two readings if the OS preempted the thread in between."""
    return max(0.0, after[0] - before[0]) if after[1] > before[1] else None
