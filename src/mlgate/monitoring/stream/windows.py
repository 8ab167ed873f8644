"""Tumbling and sliding windows, by count and by time, over per-slot counts.

A monitor never keeps records. Each record is turned into one *slot* per feature (its
reference bin, or its category, or "missing"), and a window is a vector of slot counts.
Windows are built from *panes* (Li et al. 2005, "No pane, no gain: efficient evaluation of
sliding-window aggregates over data streams", SIGMOD Record 34(1)): a window of W records
sliding by S is W / S panes of S records, so when the window slides the oldest pane's
counts are subtracted and the newest added. Expiry costs O(slots), not O(records), and the
state is ``W / S`` count vectors however long the stream runs. A tumbling window is the
one-pane case (``slide == size``).

Counting a batch costs one ``np.bincount`` per pane the batch touches, over the batch's
precomputed slot codes, so per record and feature the work is a few array operations
amortised over the batch.

Time windows work the same way with panes of ``slide_s`` seconds, numbered
``floor(t / slide_s)``. Record times are event times when records carry them; otherwise
the monitor's clock at arrival. A record whose pane has already closed is *late*: counted
and dropped (no allowed lateness), so a window, once judged, never changes. Records within
one batch may be out of order as long as they are not late. A time window is judged when
its last pane closes: when a record of a later pane arrives, or when :meth:`advance` is
told the time has passed (an idle stream still closes its windows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from mlgate.monitoring.stream.alarm import WindowSpan

__all__ = ["CountWindow", "TimeWindow", "WindowSpec"]

MAX_PANES = 10_000
"""Most panes a window may have: memory is panes x slots x 8 bytes."""

IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class CountWindow:
    """The last ``size`` records, judged every ``slide`` records (tumbling when slide is None).

    ``size`` must be a multiple of ``slide``.
    """

    size: int
    slide: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"window size must be a positive number of records, got {self.size!r}")
        slide = self.step
        if isinstance(slide, bool) or not isinstance(slide, int) or not 1 <= slide <= self.size:
            raise ValueError(f"slide must be a record count from 1 to {self.size}, got {slide!r}")
        if self.size % slide:
            raise ValueError(
                f"window size {self.size} is not a multiple of slide {slide}; windows are built "
                f"from panes of {slide} records: choose e.g. size {self.size - self.size % slide}"
            )
        if self.size // slide > MAX_PANES:
            raise ValueError(f"size / slide must be at most {MAX_PANES}, got {self.size // slide}")

    @property
    def step(self) -> int:
        return self.size if self.slide is None else self.slide

    def describe(self) -> str:
        kind = "tumbling" if self.step == self.size else f"sliding by {self.step}"
        return f"{self.size} records, {kind}"


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The last ``length_s`` seconds, judged every ``slide_s`` (tumbling when slide_s is None).

    ``length_s`` must be a whole multiple of ``slide_s``.
    """

    length_s: float
    slide_s: float | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.length_s, int | float) and math.isfinite(self.length_s)):
            raise ValueError(f"length_s must be a finite number of seconds, got {self.length_s!r}")
        if self.length_s <= 0:
            raise ValueError(f"length_s must be positive, got {self.length_s}")
        slide = self.step
        if not math.isfinite(slide) or not 0 < slide <= self.length_s:
            raise ValueError(f"slide_s must lie in (0, {self.length_s}], got {slide}")
        panes = self.length_s / slide
        if abs(panes - round(panes)) > 1e-9 * panes:
            raise ValueError(
                f"length_s {self.length_s} is not a whole multiple of slide_s {slide}; windows "
                f"are built from panes of {slide} s"
            )
        if round(panes) > MAX_PANES:
            raise ValueError(f"length_s / slide_s must be at most {MAX_PANES}, got {panes:.0f}")

    @property
    def step(self) -> float:
        return float(self.length_s if self.slide_s is None else self.slide_s)

    @property
    def panes(self) -> int:
        return round(self.length_s / self.step)

    def describe(self) -> str:
        kind = "tumbling" if self.panes == 1 else f"sliding by {self.step:g} s"
        return f"{self.length_s:g} s, {kind}"


WindowSpec = CountWindow | TimeWindow


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """A window ready to be judged: its slot counts (a copy) and where it lies."""

    counts: IntArray
    span: WindowSpan
    versions: frozenset[str] = field(default_factory=frozenset)


class Panes:
    """The ring of pane counts behind one window spec; see the module docstring.

    ``add_count`` / ``add_timed`` take a batch's slot codes, shape ``(n, features)`` with
    every feature's slot offset already added, and return the windows that closed while it
    was counted.
    """

    def __init__(self, spec: WindowSpec, n_slots: int) -> None:
        self.spec = spec
        self._n_slots = n_slots
        self._n_panes = spec.size // spec.step if isinstance(spec, CountWindow) else spec.panes
        p = self._n_panes
        self._ring = np.zeros((p, n_slots), dtype=np.int64)
        self._ring_records = np.zeros(p, dtype=np.int64)
        self._ring_times = np.full((p, 2), np.nan)  # first and last record time per pane
        self._ring_versions: list[set[str]] = [set() for _ in range(p)]
        self._window = np.zeros(n_slots, dtype=np.int64)  # sum of the ring
        self._current = np.zeros(n_slots, dtype=np.int64)
        self._current_records = 0
        self._current_times = [math.inf, -math.inf]
        self._current_versions: set[str] = set()
        self._closed = 0  # panes closed so far
        self._accepted = 0  # records counted so far
        self._judged = 0  # windows emitted so far
        self._late = 0
        self._pane_id: int | None = None  # time windows: the open pane's number
        self._first_pane: int | None = None

    # -- what the monitor reads ----------------------------------------------------------

    @property
    def accepted(self) -> int:
        return self._accepted

    @property
    def late(self) -> int:
        """Records dropped because their time window had already been judged."""
        return self._late

    @property
    def judged(self) -> int:
        return self._judged

    @property
    def window_records(self) -> int:
        """Records in the next window to be judged, counted so far."""
        return self._pending()[1]

    @property
    def nbytes(self) -> int:
        """Bytes of count state: fixed at construction, whatever the stream's length."""
        arrays = (self._ring, self._ring_records, self._ring_times, self._window, self._current)
        return sum(a.nbytes for a in arrays)

    @property
    def capacity(self) -> int | None:
        """Records a full count window holds; None for time windows."""
        return self.spec.size if isinstance(self.spec, CountWindow) else None

    def partial(self) -> ClosedWindow | None:
        """The next window as it stands (for a final judgement at the end of a stream).

        It holds the open pane and the closed panes that the next window keeps; None if
        that is no record.
        """
        counts, size = self._pending()
        if size == 0:
            return None
        keep = self._kept_slots()
        versions = set(self._current_versions).union(*(self._ring_versions[s] for s in keep))
        times = self._pane_times(self._pane_id) if self._pane_id is not None else None
        if times is None:
            times = self._record_times(keep, include_current=True)
        return ClosedWindow(counts, self._span(size, times), frozenset(versions))

    # -- counting ------------------------------------------------------------------------

    def add_count(
        self,
        codes: IntArray,
        versions: list[str] | None = None,
        times: NDArray[np.float64] | None = None,
    ) -> list[ClosedWindow]:
        """Count a batch into count panes (CountWindow only); ``times`` only label spans."""
        assert isinstance(self.spec, CountWindow)
        closed: list[ClosedWindow] = []
        slide = self.spec.step
        pos, n = 0, codes.shape[0]
        while pos < n:
            take = min(slide - self._current_records, n - pos)
            self._count(codes, versions, times, pos, pos + take)
            pos += take
            if self._current_records == slide:
                window = self._close_pane(None)
                if window is not None:
                    closed.append(window)
        return closed

    def add_timed(
        self, codes: IntArray, times: NDArray[np.float64], versions: list[str] | None = None
    ) -> list[ClosedWindow]:
        """Count a batch with one time per record into time panes (TimeWindow only)."""
        assert isinstance(self.spec, TimeWindow)
        panes = np.floor(times / self.spec.step).astype(np.int64)
        closed: list[ClosedWindow] = []
        if self._pane_id is not None:
            on_time = panes >= self._pane_id
            late = int(panes.size - np.count_nonzero(on_time))
            if late:
                self._late += late
                keep = np.flatnonzero(on_time)
                codes, panes, times = codes[keep], panes[keep], times[keep]
                versions = None if versions is None else [versions[i] for i in keep.tolist()]
        if panes.size == 0:
            return closed
        if self._pane_id is None:
            self._pane_id = self._first_pane = int(panes.min())
        order = np.argsort(panes, kind="stable")
        if np.any(order != np.arange(order.size)):
            codes, panes, times = codes[order], panes[order], times[order]
            versions = None if versions is None else [versions[i] for i in order.tolist()]
        starts = np.flatnonzero(np.diff(panes, prepend=panes[0] - 1))
        bounds = [*starts.tolist(), int(panes.size)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            closed.extend(self.advance_to(int(panes[a])))
            self._count(codes, versions, times, a, b)
        return closed

    def pane_of(self, time_s: float) -> int:
        assert isinstance(self.spec, TimeWindow)
        return math.floor(time_s / self.spec.step)

    def advance_to(self, pane_id: int) -> list[ClosedWindow]:
        """Close every open time pane before ``pane_id`` (an idle stream's windows too)."""
        closed: list[ClosedWindow] = []
        if self._pane_id is None:
            return closed
        while self._pane_id < pane_id:
            idle = not self._current_records and not self._ring_records.any()
            if idle:  # nothing left in any window: skip the empty gap at once
                self._pane_id = pane_id
                break
            window = self._close_pane(self._pane_id)
            self._pane_id += 1
            if window is not None:
                closed.append(window)
        return closed

    # -- internals -----------------------------------------------------------------------

    def _count(
        self,
        codes: IntArray,
        versions: list[str] | None,
        times: NDArray[np.float64] | None,
        a: int,
        b: int,
    ) -> None:
        if b <= a:
            return
        self._current += np.bincount(codes[a:b].ravel(), minlength=self._n_slots)
        self._current_records += b - a
        self._accepted += b - a
        if versions is not None:
            self._current_versions.update(versions[a:b])
        if times is not None:
            part = times[a:b]
            self._current_times[0] = min(self._current_times[0], float(part.min()))
            self._current_times[1] = max(self._current_times[1], float(part.max()))

    def _kept_slots(self) -> list[int]:
        """Ring slots of the closed panes that the next window to be judged keeps."""
        p = self._n_panes
        kept = min(self._closed, p - 1)
        return [(self._closed - 1 - i) % p for i in range(kept)]

    def _pending(self) -> tuple[IntArray, int]:
        counts = self._current.copy()
        size = self._current_records
        for slot in self._kept_slots():
            counts += self._ring[slot]
            size += int(self._ring_records[slot])
        return counts, size

    def _close_pane(self, pane_id: int | None) -> ClosedWindow | None:
        slot = self._closed % self._n_panes
        if self._closed >= self._n_panes:
            self._window -= self._ring[slot]
        self._ring[slot] = self._current
        self._ring_records[slot] = self._current_records
        first, last = self._current_times
        self._ring_times[slot] = (first, last) if self._current_records else (math.nan, math.nan)
        self._ring_versions[slot] = self._current_versions
        self._window += self._current
        self._closed += 1
        self._current = np.zeros(self._n_slots, dtype=np.int64)
        self._current_records = 0
        self._current_times = [math.inf, -math.inf]
        self._current_versions = set()
        if self._closed < self._n_panes:
            return None
        size = int(self._ring_records.sum())
        if size == 0:
            return None
        all_slots = list(range(self._n_panes))
        times = self._pane_times(pane_id) if pane_id is not None else None
        if times is None:
            times = self._record_times(all_slots, include_current=False)
        span = self._span(size, times)
        self._judged += 1
        versions = frozenset(set().union(*self._ring_versions))
        return ClosedWindow(self._window.copy(), span, versions)

    def _pane_times(self, last_pane: int) -> tuple[float, float]:
        step = self.spec.step
        first = last_pane - self._n_panes + 1
        if self._first_pane is not None:
            first = max(first, self._first_pane)
        return first * step, (last_pane + 1) * step

    def _record_times(
        self, slots: list[int], *, include_current: bool
    ) -> tuple[float, float] | None:
        firsts = [self._ring_times[s, 0] for s in slots if self._ring_records[s]]
        lasts = [self._ring_times[s, 1] for s in slots if self._ring_records[s]]
        if include_current and self._current_records:
            firsts.append(self._current_times[0])
            lasts.append(self._current_times[1])
        firsts = [t for t in firsts if math.isfinite(t)]
        lasts = [t for t in lasts if math.isfinite(t)]
        if not firsts or not lasts:
            return None
        return min(firsts), max(lasts)

    def _span(self, size: int, times: tuple[float, float] | None) -> WindowSpan:
        start_time, end_time = times if times is not None else (None, None)
        return WindowSpan(
            index=self._judged,
            start=self._accepted - size,
            end=self._accepted,
            size=size,
            start_time=start_time,
            end_time=end_time,
        )
