"""Windows: incremental pane counts equal counting the window's records from scratch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgate.monitoring.profile import fit_profile
from mlgate.monitoring.stream._codec import FeatureCodec
from mlgate.monitoring.stream.windows import ClosedWindow, CountWindow, Panes, TimeWindow

REFERENCE = {
    "x": np.linspace(-3.0, 3.0, 400),
    "c": np.array(["a", "b", "c", "d"] * 100, dtype=object),
}
PROFILE = fit_profile(REFERENCE)

numeric_values = st.one_of(
    st.floats(-5, 5, allow_nan=False),
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
)
category_values = st.one_of(st.sampled_from(["a", "b", "c", "d", "new", "other"]), st.none())


def _frame(xs: list[float], cs: list[str | None]) -> dict[str, Any]:
    return {"x": np.array(xs, dtype=np.float64), "c": np.array(cs, dtype=object)}


def _scratch(codec: FeatureCodec, frame: dict[str, Any], a: int, b: int) -> np.ndarray[Any, Any]:
    """The window's slot counts computed directly from its records."""
    fresh = FeatureCodec(PROFILE)
    part = {k: v[a:b] for k, v in frame.items()}
    codes = fresh.encode(part)
    return np.bincount(codes.ravel(), minlength=codec.n_slots)


@st.composite
def streams(draw: st.DrawFn) -> tuple[dict[str, Any], list[int], int, int]:
    n = draw(st.integers(0, 120))
    xs = draw(st.lists(numeric_values, min_size=n, max_size=n))
    cs = draw(st.lists(category_values, min_size=n, max_size=n))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=8)))
    slide = draw(st.integers(1, 10))
    panes = draw(st.integers(1, 4))
    return _frame(xs, cs), [0, *cuts, n], slide * panes, slide


@settings(max_examples=150)
@given(streams())
def test_count_windows_equal_recounting_from_scratch(
    case: tuple[dict[str, Any], list[int], int, int],
) -> None:
    frame, bounds, size, slide = case
    codec = FeatureCodec(PROFILE)
    panes = Panes(CountWindow(size, slide), codec.n_slots)
    closed: list[ClosedWindow] = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        closed += panes.add_count(codec.encode({k: v[a:b] for k, v in frame.items()}))
    n = len(frame["x"])
    expected_ends = list(range(size, n + 1, slide))
    assert [w.span.end for w in closed] == expected_ends
    for index, window in enumerate(closed):
        span = window.span
        assert (span.index, span.start, span.size) == (index, span.end - size, size)
        np.testing.assert_array_equal(window.counts, _scratch(codec, frame, span.start, span.end))
    assert panes.accepted == n
    partial = panes.partial()
    if partial is not None:
        span = partial.span
        assert span.end == n and span.size == panes.window_records
        np.testing.assert_array_equal(partial.counts, _scratch(codec, frame, span.start, n))


@settings(max_examples=100)
@given(
    st.lists(st.floats(0, 100, allow_nan=False), max_size=80),
    st.lists(st.integers(0, 80), max_size=6),
    st.sampled_from([(10.0, 10.0), (10.0, 5.0), (30.0, 10.0), (4.0, 1.0)]),
)
def test_time_windows_hold_exactly_the_records_of_their_interval(
    raw_times: list[float], cut_points: list[int], window: tuple[float, float]
) -> None:
    times = np.sort(np.array(raw_times, dtype=np.float64))
    n = times.size
    rng = np.random.default_rng(n)
    frame = _frame(list(rng.normal(size=n)), list(rng.choice(["a", "b", "new"], size=n)))
    length, slide = window
    codec = FeatureCodec(PROFILE)
    panes = Panes(TimeWindow(length, slide), codec.n_slots)
    bounds = [0, *sorted(min(c, n) for c in cut_points), n]
    closed: list[ClosedWindow] = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        part = {k: v[a:b] for k, v in frame.items()}
        closed += panes.add_timed(codec.encode(part), times[a:b])
    closed += panes.advance_to(10**6)  # the stream ends: every window closes
    assert panes.late == 0
    for window in closed:
        start, end = window.span.start_time, window.span.end_time
        assert start is not None and end is not None
        assert end - start <= length + 1e-9
        inside = np.flatnonzero((times >= start) & (times < end))
        assert window.span.size == inside.size > 0
        assert (window.span.start, window.span.end) == (inside[0], inside[-1] + 1)
        np.testing.assert_array_equal(
            window.counts, _scratch(codec, frame, int(inside[0]), int(inside[-1] + 1))
        )
    # every non-empty full-length window was judged exactly once
    if n:
        first = math.floor(times[0] / slide)
        ends = {round(w.span.end_time / slide) for w in closed if w.span.end_time is not None}
        panes_per_window = round(length / slide)
        expected = {
            p + 1
            for p in range(
                first + panes_per_window - 1, math.floor(times[-1] / slide) + panes_per_window
            )
            if np.any((times >= (p - panes_per_window + 1) * slide) & (times < (p + 1) * slide))
        }
        assert ends == expected


def test_sliding_expiry_subtracts_the_oldest_pane() -> None:
    codec = FeatureCodec(PROFILE)
    panes = Panes(CountWindow(4, 2), codec.n_slots)
    values = [-10.0, -10.0, 10.0, 10.0, 0.0, 0.0]
    frame = _frame(values, ["a"] * 6)
    closed = panes.add_count(codec.encode(frame))
    assert [(w.span.start, w.span.end) for w in closed] == [(0, 4), (2, 6)]
    x_slots = slice(0, len(PROFILE.features["x"].edges) + 1)  # type: ignore[union-attr]
    first, second = closed[0].counts[x_slots], closed[1].counts[x_slots]
    assert first[0] == 2 and first[-1] == 2  # two below every edge, two above
    assert second[0] == 0 and second[-1] == 2 and second.sum() == 4  # the -10s expired


def test_late_records_are_counted_and_dropped() -> None:
    codec = FeatureCodec(PROFILE)
    panes = Panes(TimeWindow(10.0), codec.n_slots)
    frame = _frame([0.0, 0.0], ["a", "a"])
    panes.add_timed(codec.encode(frame), np.array([1.0, 12.0]))  # window [0, 10) closes
    closed = panes.add_timed(codec.encode(frame), np.array([5.0, 13.0]))  # 5.0 is late
    assert panes.late == 1 and not closed and panes.accepted == 3


def test_an_idle_gap_closes_windows_without_iterating_over_it() -> None:
    codec = FeatureCodec(PROFILE)
    panes = Panes(TimeWindow(10.0, 1.0), codec.n_slots)
    panes.add_timed(codec.encode(_frame([0.0, 0.0], ["a", "a"])), np.array([0.5, 5.5]))
    closed = panes.advance_to(10**15)  # a huge gap costs at most one window of panes
    # The first window is judged once the stream has lasted a full window ([0, 10)); the
    # record at 5.5 then stays in the windows starting at 1 .. 5.
    assert [w.span.start_time for w in closed] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert [w.span.size for w in closed] == [2, 1, 1, 1, 1, 1]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CountWindow(0), "positive"),
        (lambda: CountWindow(10, 3), "multiple"),
        (lambda: CountWindow(10, 20), "slide"),
        (lambda: TimeWindow(10.0, 3.0), "whole multiple"),
        (lambda: TimeWindow(-1.0), "positive"),
        (lambda: TimeWindow(math.inf), "finite"),
    ],
)
def test_window_specs_refuse_nonsense(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
