"""The bucketed numeric statistics (stats._bucketed) against the sorting path and scipy.

The bucketed path must give the sorting path's numbers, to rounding, on every input it
accepts: the property tests use few coarse buckets so that small samples go through every
branch (sign-definite buckets, buckets sorted for W1 or KS, single-value buckets, tails).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from mlgate.monitoring.drift import compare
from mlgate.monitoring.drift._measure import UNSORTED_MIN_VALUES
from mlgate.monitoring.stats import numeric_drift, numeric_drift_unsorted
from mlgate.monitoring.stats._bucketed import bucketed_parts
from mlgate.monitoring.stats._ecdf import std_finite


def _sorting_path(ref: np.ndarray, cur: np.ndarray, bins: int) -> tuple[float, float, object]:
    """KS statistic and unnormalised W1 of the sorting path, and its drift."""
    drift = numeric_drift(np.sort(ref), np.sort(cur), bins)
    return drift.ks.statistic, drift.wasserstein * std_finite(np.sort(ref)), drift


def _assert_same(ref: np.ndarray, cur: np.ndarray, bins: int, coarse: int | None) -> bool:
    parts = bucketed_parts(ref, cur, bins, coarse)
    if parts is None:
        return False
    ks, w1, drift = _sorting_path(ref, cur, bins)
    assert math.isclose(parts.ks_statistic, ks, rel_tol=1e-12, abs_tol=1e-15)
    assert math.isclose(parts.w1, w1, rel_tol=1e-9, abs_tol=1e-12 * (1 + np.ptp(ref)))
    np.testing.assert_array_equal(parts.edges, drift.edges)
    np.testing.assert_array_equal(parts.ref_counts, drift.ref_counts)
    np.testing.assert_array_equal(parts.cur_counts, drift.cur_counts)
    assert (parts.n_ref, parts.n_cur) == (ref.size, cur.size)
    return True


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
rounded = st.builds(round, st.floats(-50, 50, allow_nan=False), st.integers(0, 2))
values = st.lists(st.one_of(finite, rounded, st.integers(-5, 40).map(float)), min_size=1)


@settings(max_examples=400, deadline=None)
@given(
    values.map(np.array),
    values.map(np.array),
    st.integers(1, 12),
    st.sampled_from([None, 1, 2, 3, 8, 64]),
)
def test_bucketed_statistics_equal_the_sorting_path(
    ref: np.ndarray, cur: np.ndarray, bins: int, coarse: int | None
) -> None:
    # Declining is always safe (the sorting path answers); what is accepted must be right.
    _assert_same(ref, cur, bins, coarse)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**31), st.integers(50, 400), st.integers(50, 400))
def test_continuous_samples_are_accepted(seed: int, n: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    assert _assert_same(rng.normal(size=n), rng.normal(0.3, 1.2, size=m), 10, None)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from([1, 2, 4, 32]))
def test_values_on_bucket_boundaries_keep_their_order(seed: int, coarse: int) -> None:
    # Values on the nominal boundaries lo + k / per_unit and one float either side: where
    # rounding could put a value in the wrong bucket if the mapping were not monotone.
    rng = np.random.default_rng(seed)
    lo, width = rng.normal(0, 100), rng.uniform(1e-3, 10)
    grid = lo + width * np.arange(-2, 40, dtype=np.float64)
    near = np.concatenate(
        (grid, np.nextafter(grid, -np.inf), np.nextafter(grid, np.inf), grid + 1e-9)
    )
    ref = rng.choice(near, size=int(rng.integers(30, 300)))
    cur = rng.choice(near, size=int(rng.integers(30, 300))) + rng.choice([0.0, width / 3])
    _assert_same(ref, cur, 10, coarse)


LARGE = 60_000


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, shift: rng.normal(shift, 1, LARGE),
        lambda rng, shift: rng.lognormal(1 + shift, 1.5, LARGE),
        lambda rng, shift: rng.standard_t(3, LARGE) + shift,
        lambda rng, shift: rng.exponential(1 + shift, LARGE),
        lambda rng, shift: rng.poisson(3 + 4 * shift, LARGE).astype(np.float64),
        lambda rng, shift: np.round(rng.normal(shift, 2, LARGE), 1),
        lambda rng, shift: 1e9 + rng.normal(shift, 1e-3, LARGE),
    ],
    ids=["normal", "lognormal", "student-t", "exponential", "poisson", "rounded", "offset"],
)
@pytest.mark.parametrize("shift", [0.0, 0.2])
def test_large_windows_agree_with_scipy(draw: object, shift: float) -> None:
    rng = np.random.default_rng(7)
    ref, cur = draw(rng, 0.0), draw(rng, shift)  # type: ignore[operator]
    drift = numeric_drift_unsorted(ref, cur)
    assert drift is not None
    expected = sps.ks_2samp(ref, cur, method="auto")
    assert math.isclose(drift.ks.statistic, expected.statistic, rel_tol=1e-12, abs_tol=1e-15)
    assert math.isclose(drift.ks.p_value, expected.pvalue, rel_tol=1e-9, abs_tol=1e-12)
    w1 = sps.wasserstein_distance(ref, cur) / np.std(ref)
    assert math.isclose(drift.wasserstein, w1, rel_tol=1e-8, abs_tol=1e-12)
    assert _assert_same(ref, cur, 10, None)


@pytest.mark.parametrize(
    ("ref", "cur"),
    [
        ([0.0, 1.0, math.inf] * 10, [0.5, 2.0] * 10),
        ([0.0, 1.0, 2.0] * 10, [-math.inf, 2.0] * 10),
        ([0.0, 1.0, math.nan] * 10, [0.5, 2.0] * 10),
        ([3.0] * 50, [3.0, 4.0] * 20),
        ([0.0, 1.0, 2.0] * 10, [5.0] * 7),
        ([-1e308, 1e308, 0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
        ([], [1.0]),
    ],
    ids=["inf-ref", "inf-cur", "nan", "constant", "few-distinct", "overflowing-span", "empty"],
)
def test_declines_what_the_sorting_path_must_do(ref: list[float], cur: list[float]) -> None:
    # Infinities, NaN (callers strip it), few distinct reference values, spans that overflow
    # and empty windows all go to the sorting path.
    assert bucketed_parts(np.array(ref), np.array(cur), 10) is None


def test_compare_on_large_windows_reports_the_sorting_paths_numbers() -> None:
    rng = np.random.default_rng(3)
    rows = UNSORTED_MIN_VALUES
    ref = {"x": rng.gamma(2, 2, rows), "k": rng.poisson(4, rows).astype(np.float64)}
    cur = {"x": rng.gamma(2.2, 2, rows), "k": rng.poisson(4.3, rows).astype(np.float64)}
    ref["x"][::50] = np.nan  # missing values are counted, then left out
    report = compare(ref, cur)
    for name in ("x", "k"):
        feature = report.features[name]
        r, c = ref[name][~np.isnan(ref[name])], cur[name][~np.isnan(cur[name])]
        assert numeric_drift_unsorted(r, c) is not None  # the path compare() takes here
        expected = numeric_drift(np.sort(r), np.sort(c))
        assert feature.missing_reference == ref[name].size - r.size
        assert math.isclose(feature.ks.statistic, expected.ks.statistic, abs_tol=1e-15)
        assert math.isclose(feature.psi, expected.psi, rel_tol=1e-12)
        assert math.isclose(feature.wasserstein, expected.wasserstein, rel_tol=1e-9)
