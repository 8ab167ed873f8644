"""Drift verdicts: the statistical traps of issue 4, every bad input, and the JSON shape."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from mlgate.errors import DataError
from mlgate.monitoring.drift import DriftOptions, FeatureDrift, compare, compare_profile
from mlgate.monitoring.profile import fit_profile

CATS = np.array(["a", "b", "c", "d", "e"], dtype=object)


def normal_frame(rng: np.random.Generator, n: int, k: int, shifts: dict[int, float] | None = None):
    shifts = shifts or {}
    return {f"x{i}": rng.normal(shifts.get(i, 0.0), 1.0, size=n) for i in range(k)}


def as_json(report_json: dict[str, object]) -> dict[str, object]:
    """Round-trip through strict JSON: fails on any NaN or infinity left in a report."""
    loaded: dict[str, object] = json.loads(json.dumps(report_json, allow_nan=False))
    return loaded


# --- statistical traps ----------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [1, 5])
def test_two_sample_chi2_holds_its_level_where_the_one_sample_form_fails(ratio: int) -> None:
    # Trap (a): 200 drift-free categorical columns, current window 1x or 5x the reference.
    rng = np.random.default_rng(ratio)
    n_ref = 400
    shares = [rng.dirichlet(np.ones(5) * 3) for _ in range(200)]
    ref = {f"c{i}": CATS[rng.choice(5, size=n_ref, p=p)] for i, p in enumerate(shares)}
    cur = {f"c{i}": CATS[rng.choice(5, size=n_ref * ratio, p=p)] for i, p in enumerate(shares)}
    report = compare(ref, cur, DriftOptions(correction="none"))
    p_values = [f.p_value for f in report.features.values()]
    assert all(p is not None for p in p_values)
    assert np.mean([p <= 0.05 for p in p_values if p is not None]) < 0.10

    # The one-sample form (reference shares taken as exact) flags far more on the same data.
    one_sample = []
    for name in ref:
        r = np.array([np.count_nonzero(ref[name] == c) for c in CATS], dtype=float)
        c = np.array([np.count_nonzero(cur[name] == k) for k in CATS], dtype=float)
        live = r > 0
        one_sample.append(sps.chisquare(c[live], r[live] / r[live].sum() * c[live].sum()).pvalue)
    assert np.mean(np.array(one_sample) <= 0.05) > 0.2


@pytest.mark.parametrize("n", [50, 100, 200, 1000])
def test_psi_decisions_stay_quiet_on_small_drift_free_windows(n: int) -> None:
    # Trap (b) through compare(): the PSI test with its sample-size-aware threshold.
    rng = np.random.default_rng(100 + n)
    k = 100
    report = compare(
        normal_frame(rng, n, k),
        normal_frame(rng, n, k),
        DriftOptions(correction="none", tests={f"x{i}": "psi" for i in range(k)}),
    )
    assert report.n_drifted / k < 0.10


def test_large_samples_need_an_effect_not_just_a_p_value() -> None:
    # Trap (c): at a million rows a 0.02-sigma shift is significant but negligible.
    rng = np.random.default_rng(7)
    n = 1_000_000
    ref = {"small": rng.normal(size=n), "big": rng.normal(size=n)}
    cur = {"small": rng.normal(0.02, size=n), "big": rng.normal(0.5, size=n)}
    report = compare(ref, cur)
    small, big = report.features["small"], report.features["big"]
    assert small.p_value is not None and small.p_value < 1e-10
    assert not small.drifted and small.decided_by in ("wasserstein", "psi")
    assert "too small to matter" in small.reason
    assert big.drifted and report.drifted
    assert report.share_drifted == 0.5


def test_multiple_testing_control_across_twenty_features() -> None:
    # Trap (d): 20 drift-free features; BH keeps the dataset alarm rate near alpha.
    rng = np.random.default_rng(20)
    runs, dataset_alarms, uncorrected_alarms = 200, 0, 0
    for _ in range(runs):
        report = compare(normal_frame(rng, 100, 20), normal_frame(rng, 100, 20))
        dataset_alarms += report.drifted
        uncorrected_alarms += any(
            f.p_value is not None and f.p_value <= 0.05 for f in report.features.values()
        )
    assert dataset_alarms / runs < 0.08
    assert uncorrected_alarms / runs > 0.3  # what no correction would have raised


def test_a_real_shift_in_three_of_twenty_features_is_caught() -> None:
    rng = np.random.default_rng(21)
    shifted = {0: 0.5, 7: 0.5, 13: 0.5}
    runs, caught, false_flags = 20, 0, 0
    for _ in range(runs):
        report = compare(normal_frame(rng, 500, 20), normal_frame(rng, 500, 20, shifted))
        drifted = {name for name, f in report.features.items() if f.drifted}
        caught += report.drifted and {"x0", "x7", "x13"} <= drifted
        false_flags += len(drifted - {"x0", "x7", "x13"})
    assert caught == runs
    assert false_flags / (17 * runs) < 0.05


# --- bad input ------------------------------------------------------------------------------


def test_empty_current_window_and_empty_reference() -> None:
    rng = np.random.default_rng(1)
    ref = {"x": rng.normal(size=200), "c": CATS[rng.integers(0, 5, 200)]}
    empty = {"x": np.array([], dtype=float), "c": np.array([], dtype=object)}
    for report in (compare(ref, empty), compare(empty, ref, kinds={"c": "categorical"})):
        assert not report.drifted and report.share_drifted == 0.0
        for feature in report.features.values():
            assert feature.status == "empty" and not feature.drifted
            assert "no rows" in feature.reason
        as_json(report.to_json())


def test_constant_features() -> None:
    rng = np.random.default_rng(2)
    n = 300
    ref = {"same": np.full(n, 4.0), "moved": np.full(n, 4.0), "spread": np.full(n, 4.0)}
    cur = {"same": np.full(n, 4.0), "moved": np.full(n, 5.0), "spread": rng.normal(4, 1, n)}
    report = compare(ref, cur)
    same, moved, spread = (report.features[k] for k in ("same", "moved", "spread"))
    assert {same.status, moved.status, spread.status} == {"constant"}
    assert not same.drifted and same.psi == 0.0 and same.wasserstein == 0.0
    assert moved.drifted and spread.drifted
    assert moved.wasserstein == math.inf and "zero spread" in moved.reason
    assert moved.psi is not None and moved.psi > 1.0  # bins below/at/above the constant
    out = as_json(report.to_json())
    assert out["features"]["moved"]["wasserstein"] is None  # type: ignore[index]


def test_all_missing_columns() -> None:
    rng = np.random.default_rng(3)
    ref = {"x": rng.normal(size=100), "c": CATS[rng.integers(0, 5, 100)]}
    cur = {"x": np.full(100, np.nan), "c": np.full(100, None, dtype=object)}
    report = compare(ref, cur)
    for feature in report.features.values():
        assert feature.status == "all_missing" and not feature.drifted
        assert feature.missing_current == 100 and feature.psi is None
    assert as_json(report.to_json())["features"]["x"]["ks"] == {  # type: ignore[index]
        "statistic": None,
        "p_value": None,
    }


def test_column_missing_from_current_and_extra_columns() -> None:
    rng = np.random.default_rng(4)
    ref = normal_frame(rng, 100, 2)
    cur = {"x0": rng.normal(size=100), "new": rng.normal(size=100)}
    report = compare(ref, cur)
    assert report.features["x1"].status == "missing_column"
    assert not report.features["x1"].drifted
    assert report.ignored_columns == ("new",)
    assert "not judged: x1 (missing_column)" in report.reason


def test_new_category_gets_its_own_bin_and_is_reported() -> None:
    rng = np.random.default_rng(5)
    ref = {"c": CATS[rng.integers(0, 3, 2000)]}
    cur = {"c": np.concatenate([CATS[rng.integers(0, 3, 1700)], np.full(300, "zzz", dtype=object)])}
    feature = compare(ref, cur).features["c"]
    assert feature.drifted and feature.new_categories == ("zzz",)
    assert feature.new_category_share == pytest.approx(0.15)
    assert "unseen in the reference" in feature.reason
    assert feature.chi2 is not None and feature.chi2.dof == 3


def test_mixed_types_and_kind_mismatches_are_data_errors() -> None:
    ref = {"c": np.array(["a", "b"] * 50, dtype=object)}
    mixed = {"c": np.array(["a", 1] * 50, dtype=object)}
    with pytest.raises(DataError, match="mixes text with other types"):
        compare(ref, mixed)
    with pytest.raises(DataError, match="is numeric in the reference but holds"):
        compare({"x": np.arange(100.0)}, {"x": np.array(["1.0", "x"] * 50, dtype=object)})
    with pytest.raises(DataError, match="categorical in the reference but has dtype float64"):
        compare(ref, {"c": np.arange(100.0)})
    with pytest.raises(DataError, match="same length"):
        compare({"x": np.arange(3.0), "y": np.arange(4.0)}, {"x": np.arange(3.0)})


def test_a_ten_row_reference_is_too_small_to_judge() -> None:
    rng = np.random.default_rng(6)
    report = compare({"x": rng.normal(size=10)}, {"x": rng.normal(5.0, size=5000)})
    feature = report.features["x"]
    assert feature.status == "too_small" and not feature.drifted and not report.drifted
    assert "10 in the reference" in feature.reason and "at least 50" in feature.reason
    assert feature.threshold == 50 and feature.decided_by == "too_small"
    assert feature.ks is not None  # statistics are still reported
    as_json(report.to_json())


def test_infinities_are_out_of_range_values() -> None:
    rng = np.random.default_rng(8)
    ref = {"x": rng.normal(size=2000)}
    cur_values = rng.normal(size=2000)
    cur_values[:400] = np.inf
    report = compare(ref, {"x": cur_values})
    feature = report.features["x"]
    assert feature.infinite_current == 400 and feature.infinite_reference == 0
    assert feature.drifted and "infinite" in feature.reason
    assert feature.wasserstein is not None and feature.wasserstein < 0.1  # finite part unmoved
    assert feature.psi is not None and feature.psi > 0.2  # the top bin took the infinities
    as_json(report.to_json())
    only_inf = compare(ref, {"x": np.full(100, -np.inf)}).features["x"]
    assert (
        only_inf.drifted and only_inf.wasserstein is not None and math.isnan(only_inf.wasserstein)
    )
    assert as_json(compare(ref, {"x": np.full(100, -np.inf)}).to_json())


def test_nan_is_missing_and_counted() -> None:
    rng = np.random.default_rng(9)
    cur = rng.normal(size=500)
    cur[::5] = np.nan
    feature = compare({"x": rng.normal(size=500)}, {"x": cur}).features["x"]
    assert feature.missing_current == 100 and feature.n_current == 400
    assert feature.status == "ok" and not feature.drifted


# --- options and shape ----------------------------------------------------------------------


def test_report_json_has_the_promised_shape() -> None:
    rng = np.random.default_rng(10)
    ref = {"num": rng.normal(size=300), "cat": CATS[rng.integers(0, 5, 300)]}
    cur = {"num": rng.normal(size=300), "cat": CATS[rng.integers(0, 5, 300)]}
    out = as_json(compare(ref, cur).to_json())
    assert isinstance(out["drifted"], bool) and isinstance(out["share_drifted"], float)
    assert "method" in out and "reason" in out
    num, cat = out["features"]["num"], out["features"]["cat"]  # type: ignore[index]
    for feature in (num, cat):
        assert {"drifted", "psi", "js", "decided_by", "threshold", "n_reference"} <= set(feature)
        assert {"n_current", "status", "reason"} <= set(feature)
    assert set(num["ks"]) == {"statistic", "p_value"} and "wasserstein" in num
    assert "chi2" not in num
    assert {"statistic", "p_value"} <= set(cat["chi2"]) and "ks" not in cat
    assert "wasserstein" not in cat


def test_per_feature_test_overrides_and_option_checks() -> None:
    rng = np.random.default_rng(12)
    ref = {"x": rng.normal(size=400), "c": CATS[rng.integers(0, 5, 400)]}
    cur = {"x": rng.normal(1.0, size=400), "c": CATS[rng.integers(0, 5, 400)]}
    report = compare(ref, cur, DriftOptions(tests={"x": "chi2", "c": "psi"}))
    x, c = report.features["x"], report.features["c"]
    assert x.test == "chi2" and x.chi2 is not None and x.p_value == x.chi2.p_value
    assert x.drifted and "chi2" in as_json(report.to_json())["features"]["x"]  # type: ignore[operator]
    assert c.test == "psi" and not c.drifted
    with pytest.raises(ValueError, match="KS needs an ordering"):
        compare(ref, cur, DriftOptions(tests={"c": "ks"}))
    with pytest.raises(ValueError, match="lacks"):
        compare(ref, cur, DriftOptions(tests={"nope": "ks"}))
    for bad in ({"alpha": 0.0}, {"correction": "holm"}, {"bins": 1}, {"drift_share": 0.0}):
        with pytest.raises(ValueError):
            DriftOptions(**bad)  # type: ignore[arg-type]


def test_corrections_and_the_dataset_share_rule() -> None:
    rng = np.random.default_rng(13)
    ref = normal_frame(rng, 400, 4)
    cur = normal_frame(rng, 400, 4, {0: 1.0})
    bh = compare(ref, cur)
    bonferroni = compare(ref, cur, DriftOptions(correction="bonferroni"))
    none = compare(ref, cur, DriftOptions(correction="none"))

    def adjusted(report_features: dict[str, FeatureDrift]) -> float | None:
        return report_features["x1"].p_value_adjusted

    assert adjusted(dict(none.features)) == none.features["x1"].p_value
    assert adjusted(dict(bonferroni.features)) == pytest.approx(
        min(1.0, 4 * (none.features["x1"].p_value or 0.0))
    )
    assert bh.drifted and bh.n_drifted == 1 and bh.share_drifted == 0.25
    half = compare(ref, cur, DriftOptions(drift_share=0.5))
    assert not half.drifted and half.n_drifted == 1 and "needs >= 0.5" in half.reason


def test_compare_profile_matches_compare() -> None:
    rng = np.random.default_rng(14)
    ref = {"x": rng.gamma(2.0, size=20_000), "c": CATS[rng.integers(0, 5, 20_000)]}
    cur = {"x": rng.gamma(2.2, size=5000), "c": CATS[rng.integers(0, 4, 5000)]}
    profile = fit_profile(ref)
    exact, approx = compare(ref, cur), compare_profile(profile, cur)
    for name in ("x", "c"):
        e, a = exact.features[name], approx.features[name]
        assert (a.psi, a.js, a.kl, a.chi2) == (e.psi, e.js, e.kl, e.chi2)
        assert a.drifted == e.drifted
    x_profile = profile.features["x"]
    e_ks, a_ks = exact.features["x"].ks, approx.features["x"].ks
    assert e_ks is not None and a_ks is not None
    assert abs(e_ks.statistic - a_ks.statistic) <= x_profile.ks_error + 1e-12  # type: ignore[union-attr]
    e_w, a_w = exact.features["x"].wasserstein, approx.features["x"].wasserstein
    assert e_w is not None and a_w is not None
    assert abs(e_w - a_w) <= x_profile.wasserstein_error + 1e-12  # type: ignore[union-attr]
    missing = compare_profile(profile, {"x": cur["x"]})
    assert missing.features["c"].status == "missing_column"
