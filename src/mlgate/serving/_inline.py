"""When a model may run on the event loop instead of a thread.

The reasons and the rule are in :mod:`mlgate.serving.batcher`'s docstring; the numbers
are the constants below.
"""

from __future__ import annotations

from collections import deque

__all__ = ["InlinePolicy"]

_INLINE_AFTER = 32
_SLOW_WINDOW = 256
_SLOW_ALLOWED = 3
_HARD_FACTOR = 40.0


class InlinePolicy:
    """Learns from every finished call whether the next ones may run inline."""

    def __init__(self, budget_s: float) -> None:
        self._budget_s = budget_s
        self._calls = 0
        self._slow: deque[bool] = deque(maxlen=_SLOW_WINDOW)  # recent calls over budget
        self._slow_count = 0
        self._hard_miss = False  # the last call ran far over budget
        self._size = 0  # input elements of the largest batch seen inside the budget

    def allows(self, size: int) -> bool:
        """``size``: input elements of the batch; rows alone would let one huge row in."""
        return (
            self._budget_s > 0.0
            and self._calls >= _INLINE_AFTER
            and not self._hard_miss
            and self._slow_count <= _SLOW_ALLOWED
            and size <= self._size
        )

    def observe(self, size: int, seconds: float) -> None:
        """Every finished call, failed ones too, with its own duration."""
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
