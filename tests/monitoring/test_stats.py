"""Oracle and property tests for the drift statistics (mlgate.monitoring.stats)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import special
from scipy import stats as sps
from scipy.spatial import distance

from mlgate.errors import DataError
from mlgate.monitoring.stats import (
    PSI_PSEUDO_COUNT,
    _ks,
    adjust_p_values,
    benjamini_hochberg,
    bin_counts,
    chi2_two_sample,
    js_distance,
    kl_divergence,
    ks_2samp,
    numeric_drift,
    psi,
    psi_p_value,
    psi_threshold,
    quantile_edges,
    wasserstein_normalised,
)

REL = 1e-9


def close(a: float, b: float, rel: float = REL) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-300)


def _sorted(values: list[float]) -> np.ndarray:
    return np.sort(np.asarray(values, dtype=np.float64))


# Samples with many ties (small integers) or continuous values, of any small size.
tied = st.lists(st.integers(-4, 4).map(float), min_size=1, max_size=120)
continuous = st.lists(
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), min_size=1, max_size=120
)
samples = st.one_of(tied, continuous).map(_sorted)
counts = st.lists(st.integers(0, 60), min_size=2, max_size=12)


def scipy_ks(a: np.ndarray, b: np.ndarray) -> tuple[float, float] | None:
    """scipy's answer, or None where scipy itself warns (its own exact-to-asymp fallback)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sps.ks_2samp(a, b, method="auto")
    if caught:
        return None
    return float(result.statistic), float(result.pvalue)


# --- Kolmogorov-Smirnov --------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(samples, samples)
def test_ks_matches_scipy_auto_with_ties_and_unequal_sizes(a: np.ndarray, b: np.ndarray) -> None:
    expected = scipy_ks(a, b)
    assume(expected is not None)
    assert expected is not None
    ours = ks_2samp(a, b)
    assert close(ours.statistic, expected[0], 1e-12)
    assert close(ours.p_value, expected[1])
    assert ours.method == "exact"
    assert 0.0 <= ours.statistic <= 1.0 and 0.0 <= ours.p_value <= 1.0


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 90), st.integers(1, 90), st.data())
def test_numpy_path_counter_matches_scipy_exact(m: int, n: int, data: st.DataObject) -> None:
    # The fallback used when scipy's compiled counter is unavailable must give its numbers.
    assume(m != n)
    g = math.gcd(m, n)
    lcm = (m // g) * n
    h = data.draw(st.integers(1, lcm))
    assert _ks._COMPILED_COUNTER is not None
    expected = float(_ks._COMPILED_COUNTER(m, n, g, h))
    assert close(_ks._sf_band_paths(m, n, h), expected)


@pytest.mark.parametrize(
    ("n_ref", "n_cur", "shift"),
    [(12_000, 15_000, 0.0), (12_000, 15_000, 0.05), (30_000, 10_001, 0.03), (20_000, 20_000, 0.3)],
)
def test_ks_matches_scipy_in_the_asymptotic_regime(n_ref: int, n_cur: int, shift: float) -> None:
    rng = np.random.default_rng(n_ref + n_cur)
    a = np.sort(rng.normal(size=n_ref))
    b = np.sort(rng.normal(shift, size=n_cur))
    expected = sps.ks_2samp(a, b, method="auto")
    ours = ks_2samp(a, b)
    assert ours.method == "asymp"
    assert close(ours.statistic, float(expected.statistic), 1e-12)
    assert close(ours.p_value, float(expected.pvalue))


@pytest.mark.parametrize(
    ("n", "x"), [(20_000, 0.012), (20_000, 0.05), (60_000, 0.01), (150_000, 0.004), (12_000, 0.6)]
)
def test_numpy_smirnov_series_matches_scipy(n: int, x: float) -> None:
    assert close(2.0 * _ks.smirnov_sf(n, x), 2.0 * float(special.smirnov(n, x)))
    assert close(_ks.asymptotic_sf(x, 2 * n, 2 * n), float(sps.kstwo.sf(x, n)))


def test_ks_of_identical_samples_is_zero_with_p_one() -> None:
    a = _sorted([1.0, 2.0, 2.0, 5.0])
    result = ks_2samp(a, a)
    assert result.statistic == 0.0 and result.p_value == 1.0


def test_ks_refuses_empty_windows() -> None:
    with pytest.raises(DataError, match="current window has no non-missing values"):
        ks_2samp(_sorted([1.0]), _sorted([math.nan]))


# --- Wasserstein ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(samples, samples)
def test_wasserstein_matches_scipy_over_reference_std(a: np.ndarray, b: np.ndarray) -> None:
    ours = wasserstein_normalised(a, b)
    w1 = float(sps.wasserstein_distance(a, b))
    std = float(np.std(a))
    if std > 0:
        assert close(ours, w1 / std)
    else:  # constant reference: 0 if the current sits on it, else infinite (documented)
        assert ours == (0.0 if w1 == 0 else math.inf)


def test_wasserstein_leaves_infinities_out_and_is_nan_without_finite_values() -> None:
    ref = _sorted([0.0, 1.0, 2.0, 3.0])
    cur = _sorted([0.0, 1.0, 2.0, 3.0, math.inf, -math.inf])
    assert wasserstein_normalised(ref, cur) == 0.0
    assert math.isnan(wasserstein_normalised(ref, _sorted([math.inf])))


# --- binned statistics ----------------------------------------------------------------------


def _shares(c: np.ndarray) -> np.ndarray:
    return (c + PSI_PSEUDO_COUNT) / (c.sum() + PSI_PSEUDO_COUNT * c.size)


@settings(max_examples=200, deadline=None)
@given(counts, st.data())
def test_binned_statistics_match_direct_formulas_and_scipy(
    ref_list: list[int], data: st.DataObject
) -> None:
    cur_list = data.draw(
        st.lists(st.integers(0, 60), min_size=len(ref_list), max_size=len(ref_list))
    )
    ref, cur = np.array(ref_list), np.array(cur_list)
    assume(ref.sum() > 0 and cur.sum() > 0)
    p, q = _shares(ref.astype(float)), _shares(cur.astype(float))
    assert (
        close(psi(ref, cur), float(np.sum((q - p) * np.log(q / p))), 1e-9) or psi(ref, cur) < 1e-15
    )
    assert (
        close(kl_divergence(ref, cur), float(sps.entropy(p, q))) or kl_divergence(ref, cur) < 1e-15
    )
    expected_js = float(distance.jensenshannon(ref, cur, base=2))
    assert (
        close(js_distance(ref, cur), expected_js)
        or abs(js_distance(ref, cur) - expected_js) < 1e-12
    )

    live = (ref + cur) > 0
    table = np.vstack([ref[live], cur[live]])
    result = chi2_two_sample(ref, cur)
    if table.shape[1] < 2:
        assert (result.statistic, result.p_value, result.dof) == (0.0, 1.0, 0)
    else:
        stat, pval, dof, _ = sps.chi2_contingency(table, correction=False)
        assert result.dof == dof
        assert close(result.statistic, float(stat)) or abs(result.statistic - stat) < 1e-12
        assert close(result.p_value, float(pval))


@settings(max_examples=200, deadline=None)
@given(counts, st.data())
def test_divergence_properties(ref_list: list[int], data: st.DataObject) -> None:
    cur_list = data.draw(
        st.lists(st.integers(0, 60), min_size=len(ref_list), max_size=len(ref_list))
    )
    ref, cur = np.array(ref_list), np.array(cur_list)
    assume(ref.sum() > 0 and cur.sum() > 0)
    assert psi(ref, cur) >= 0.0 and kl_divergence(ref, cur) >= 0.0
    js = js_distance(ref, cur)
    assert 0.0 <= js <= 1.0
    assert js == pytest.approx(js_distance(cur, ref), abs=1e-12)
    assert psi(ref, cur) == pytest.approx(psi(cur, ref), rel=1e-12, abs=1e-15)  # symmetric
    assert psi(ref, ref) == 0.0 and js_distance(ref, ref) == 0.0 and kl_divergence(ref, ref) == 0.0
    assert chi2_two_sample(ref, ref).p_value == pytest.approx(1.0)
    assert 0.0 <= chi2_two_sample(ref, cur).p_value <= 1.0


def test_js_distance_of_disjoint_distributions_is_one() -> None:
    assert js_distance([10, 0], [0, 3]) == pytest.approx(1.0)


def test_binned_statistics_refuse_an_empty_window_and_mismatched_bins() -> None:
    with pytest.raises(DataError, match="current window has no values"):
        psi([1, 2], [0, 0])
    with pytest.raises(DataError, match="reference window has none"):
        chi2_two_sample([0, 0], [1, 2])
    with pytest.raises(ValueError, match="same bins"):
        js_distance([1, 2], [1, 2, 3])


# --- bins -----------------------------------------------------------------------------------


def test_quantile_edges_leave_no_reference_bin_empty() -> None:
    rng = np.random.default_rng(3)
    for ref in (rng.normal(size=1000), rng.integers(0, 30, 1000), rng.exponential(size=57)):
        x = np.sort(ref.astype(float))
        edges = quantile_edges(x, 10)
        assert np.all(np.diff(edges) > 0)
        assert 1 <= edges.size <= 9
        assert np.all(bin_counts(x, edges, is_sorted=True) > 0)


def test_quantile_edges_for_constant_few_valued_and_odd_columns() -> None:
    constant = quantile_edges(_sorted([2.5] * 40))
    assert constant.tolist() == [2.5, float(np.nextafter(2.5, np.inf))]
    assert bin_counts([2.0, 2.5, 2.5, 9.0], constant).tolist() == [1, 2, 1]
    binary = _sorted([0.0] * 95 + [1.0] * 5)
    assert quantile_edges(binary).tolist() == [1.0]  # one bin per value, not one bin in all
    assert quantile_edges(_sorted([])).size == 0
    with_specials = _sorted([-math.inf, 1.0, 2.0, 3.0, math.inf, math.inf, math.nan])
    assert np.all(np.isfinite(quantile_edges(with_specials)))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.floats(-50, 50), st.just(math.nan), st.just(math.inf)), max_size=80),
    st.lists(st.floats(-60, 60), min_size=1, max_size=9, unique=True),
)
def test_bin_counts_sorted_and_unsorted_agree(values: list[float], edge_list: list[float]) -> None:
    edges = np.sort(np.array(edge_list))
    v = np.array(values, dtype=np.float64)
    unsorted = bin_counts(v, edges)
    assert unsorted.tolist() == bin_counts(np.sort(v), edges, is_sorted=True).tolist()
    assert unsorted.sum() == np.count_nonzero(~np.isnan(v))
    assert (
        unsorted.tolist()
        == np.histogram(
            np.clip(v[~np.isnan(v)], -1e9, 1e9), np.concatenate(([-2e9], edges, [2e9]))
        )[0].tolist()
    )


# --- PSI sample-size awareness (statistical trap b) -----------------------------------------


@pytest.mark.parametrize("n", [50, 100, 200, 1000])
def test_psi_threshold_holds_its_level_on_drift_free_windows(n: int) -> None:
    rng = np.random.default_rng(n)
    runs, aware, naive = 400, 0, 0
    for _ in range(runs):
        ref = np.sort(rng.normal(size=n))
        cur = np.sort(rng.normal(size=n))
        edges = quantile_edges(ref, 10)
        value = psi(bin_counts(ref, edges, is_sorted=True), bin_counts(cur, edges, is_sorted=True))
        aware += value >= psi_threshold(n, n, edges.size + 1)
        naive += value >= 0.1
    assert aware / runs < 0.10
    if n == 50:
        assert naive / runs > 0.5  # the trap: a fixed 0.1 fires on most small clean windows


def test_psi_threshold_and_p_value_agree() -> None:
    threshold = psi_threshold(80, 120, 10, base=0.0, alpha=0.05)
    assert psi_p_value(threshold, 80, 120, 10) == pytest.approx(0.05)
    assert psi_threshold(10**6, 10**6, 10) == 0.1
    assert psi_p_value(0.3, 10, 10, 1) == 1.0


# --- multiple testing -----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40), st.floats(0.001, 0.5))
def test_benjamini_hochberg_matches_scipy_and_the_step_up_rule(
    p: list[float], alpha: float
) -> None:
    values = np.array(p)
    adjusted = adjust_p_values(values, "bh")
    np.testing.assert_allclose(adjusted, sps.false_discovery_control(values), rtol=1e-12)
    m = values.size
    ordered = np.sort(values)
    limits = np.arange(1, m + 1) * alpha / m
    assume(np.all(np.abs(ordered - limits) > 1e-12))  # exact ties depend on rounding order
    passing = np.flatnonzero(ordered <= limits)
    cutoff = ordered[passing[-1]] if passing.size else -1.0
    assert benjamini_hochberg(values, alpha).tolist() == (values <= cutoff).tolist()


def test_other_corrections() -> None:
    p = [0.01, 0.04, 0.5]
    assert adjust_p_values(p, "bonferroni").tolist() == pytest.approx([0.03, 0.12, 1.0])
    assert adjust_p_values(p, "none").tolist() == p
    assert adjust_p_values([], "bh").size == 0
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        adjust_p_values([math.nan], "bh")


# --- everything from one sort ---------------------------------------------------------------


def test_numeric_drift_agrees_with_the_separate_statistics() -> None:
    rng = np.random.default_rng(11)
    ref = np.sort(rng.normal(size=3000))
    cur = np.sort(np.concatenate((rng.normal(0.2, 1.3, size=2500), [math.inf, -math.inf])))
    drift = numeric_drift(ref, cur, bins=10)
    ks = ks_2samp(ref, cur)
    assert (drift.ks.statistic, drift.ks.p_value) == (ks.statistic, ks.p_value)
    assert drift.wasserstein == pytest.approx(wasserstein_normalised(ref, cur), rel=1e-12)
    assert drift.cur_counts[0] >= 1 and drift.cur_counts[-1] >= 1  # infinities in outer bins
    assert drift.cur_counts.sum() == cur.size and drift.ref_counts.sum() == ref.size
    assert drift.psi == psi(drift.ref_counts, drift.cur_counts)
    assert drift.chi2 == chi2_two_sample(drift.ref_counts, drift.cur_counts)
    assert (drift.n_ref, drift.n_cur) == (3000, 2502)


def test_numeric_drift_of_identical_windows_is_zero() -> None:
    x = np.sort(np.random.default_rng(5).integers(0, 7, 500).astype(float))
    drift = numeric_drift(x, x)
    assert drift.psi == drift.kl == drift.js == drift.wasserstein == drift.ks.statistic == 0.0
    assert drift.ks.p_value == 1.0 and drift.chi2.p_value == pytest.approx(1.0)
