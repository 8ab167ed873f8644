"""The training window: parsing its YAML and the pure row selection, by property."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlgate.errors import LoopConfigError
from mlgate.loop.window import WindowPolicy, parse_window, select_rows

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("data", "policy"),
    [
        ({"recent": 5000}, WindowPolicy(recent=5000)),
        ({"seconds": 86400}, WindowPolicy(seconds=86400.0)),
        ({"seconds": 0.5}, WindowPolicy(seconds=0.5)),
        ({"recent": 3000, "reference": 1000}, WindowPolicy(recent=3000, reference=1000)),
        ({"seconds": 60, "reference": 10}, WindowPolicy(seconds=60.0, reference=10)),
        ({"recent": 1, "reference": 0}, WindowPolicy(recent=1)),
    ],
)
def test_windows_parse_and_round_trip(data: dict[str, Any], policy: WindowPolicy) -> None:
    assert parse_window(data) == policy
    assert parse_window(policy.to_json()) == policy


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([5000], "training.window must be a mapping"),
        ({}, "exactly one of recent or seconds"),
        ({"recent": 10, "seconds": 60}, "exactly one of recent or seconds"),
        ({"reference": 10}, "exactly one of recent or seconds"),
        ({"recent": 0}, "training.window.recent must be an integer >= 1"),
        ({"recent": 2.5}, "training.window.recent must be an integer >= 1"),
        ({"recent": True}, "training.window.recent must be an integer >= 1"),
        ({"recent": "100"}, "training.window.recent"),
        ({"recent": 10, "reference": -1}, "training.window.reference must be an integer >= 0"),
        ({"seconds": 0}, "training.window.seconds must be a positive number"),
        ({"seconds": float("inf")}, "training.window.seconds must be a positive number"),
        ({"seconds": "1d"}, "training.window.seconds"),
        ({"recent": 10, "newest": 5}, "unknown keys ['newest']"),
    ],
)
def test_bad_windows_name_their_yaml_path(data: Any, fragment: str) -> None:
    with pytest.raises(LoopConfigError) as caught:
        parse_window(data)
    assert fragment in str(caught.value)


def test_the_yaml_path_is_the_callers() -> None:
    with pytest.raises(LoopConfigError, match=r"loops\[0\]\.training\.window\.recent"):
        parse_window({"recent": -1}, where="loops[0].training.window")


def test_a_policy_built_in_code_is_checked_too() -> None:
    with pytest.raises(LoopConfigError):
        WindowPolicy()
    with pytest.raises(LoopConfigError):
        WindowPolicy(recent=0)


@st.composite
def rows(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Unique sequence numbers in any order, with times around NOW (some in the future)."""
    seqs = draw(st.lists(st.integers(1, 10_000), unique=True, max_size=60))
    offsets = draw(
        st.lists(st.floats(-5000, 100, allow_nan=False), min_size=len(seqs), max_size=len(seqs))
    )
    return np.array(seqs, dtype=np.int64), NOW + np.array(offsets, dtype=np.float64)


policies = st.one_of(
    st.builds(WindowPolicy, recent=st.integers(1, 80), reference=st.integers(0, 30)),
    st.builds(
        WindowPolicy, seconds=st.floats(1, 6000, allow_nan=False), reference=st.integers(0, 30)
    ),
)


@given(rows(), policies, st.integers(0, 2**32 - 1))
def test_select_rows_keeps_its_promises(
    data: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]], policy: WindowPolicy, seed: int
) -> None:
    seqs, times = data
    chosen = select_rows(seqs, times, policy, NOW, seed)
    picked = seqs[chosen]
    # only rows given, each once, oldest first
    assert len(set(chosen.tolist())) == len(chosen)
    assert all(0 <= i < len(seqs) for i in chosen.tolist())
    assert picked.tolist() == sorted(picked.tolist())
    # deterministic under the seed
    assert select_rows(seqs, times, policy, NOW, seed).tolist() == chosen.tolist()
    if policy.recent is not None:
        newest = set(sorted(seqs.tolist())[-policy.recent :])
        assert newest <= set(picked.tolist())
        reference = set(picked.tolist()) - newest
        older = len(seqs) - len(newest)
        assert len(reference) == min(policy.reference, older)
        assert all(s < min(newest) for s in reference)
    else:
        assert policy.seconds is not None
        start = NOW - policy.seconds
        window = {int(s) for s, t in zip(seqs, times, strict=True) if start <= t <= NOW}
        older = {int(s) for s, t in zip(seqs, times, strict=True) if t < start}
        assert window <= set(picked.tolist())
        reference = set(picked.tolist()) - window
        assert reference <= older
        assert len(reference) == min(policy.reference, len(older))


@given(rows(), policies, st.integers(0, 2**32 - 1))
def test_select_rows_is_idempotent_on_its_own_choice(
    data: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]], policy: WindowPolicy, seed: int
) -> None:
    # The inbox re-runs the rule on the rows it fetched; that must change nothing.
    seqs, times = data
    chosen = select_rows(seqs, times, policy, NOW, seed)
    again = select_rows(seqs[chosen], times[chosen], policy, NOW, seed + 1)
    assert again.tolist() == list(range(len(chosen)))


def test_the_reference_sample_depends_on_the_seed() -> None:
    seqs = np.arange(1, 1001, dtype=np.int64)
    times = np.full(1000, NOW)
    policy = WindowPolicy(recent=100, reference=50)
    a = select_rows(seqs, times, policy, NOW, seed=1)
    b = select_rows(seqs, times, policy, NOW, seed=2)
    assert len(a) == len(b) == 150
    assert a[-100:].tolist() == b[-100:].tolist() == list(range(900, 1000))
    assert a[:50].tolist() != b[:50].tolist()


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="3 sequence numbers but 2 times"):
        select_rows(np.arange(3), np.zeros(2), WindowPolicy(recent=1), NOW)
