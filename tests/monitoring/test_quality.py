"""Tests for mlgate.monitoring.quality: every check fires on poisoned data, not on clean data.

Data: three well-separated Gaussian blobs in x0..x2 (the label says which blob), a
heavy-tailed column (Student t, 3 dof), a categorical colour. The profile is fitted
once on 4,000 reference rows; batches come from the same generator with other seeds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.datasets import make_blobs, make_classification

from mlgate.errors import DataError
from mlgate.monitoring.quality import (
    CHECKS,
    QualityOptions,
    QualityProfile,
    QualityReport,
    check_batch,
)
from mlgate.monitoring.quality import _stats as qs
from mlgate.monitoring.quality._poisoning import label_shift

CENTERS = np.array([[0.0, 0.0, 0.0], [6.0, 6.0, 0.0], [0.0, 6.0, 6.0]])
COLOURS = np.array(["red", "green", "blue", "grey", "pink"], dtype=object)
COLOUR_P = [0.35, 0.25, 0.2, 0.15, 0.05]
NEXT_CLASS = {"c0": "c1", "c1": "c2", "c2": "c0"}

Frame = dict[str, np.ndarray]


def make_frame(n: int, seed: int) -> Frame:
    rng = np.random.default_rng(seed)
    points, classes = make_blobs(n_samples=n, centers=CENTERS, cluster_std=1.0, random_state=seed)
    return {
        "x0": points[:, 0],
        "x1": points[:, 1],
        "x2": points[:, 2],
        "heavy": rng.standard_t(3, size=n),
        "colour": rng.choice(COLOURS, size=n, p=COLOUR_P),
        "label": np.array([f"c{c}" for c in classes], dtype=object),
    }


@pytest.fixture(scope="module")
def profile() -> QualityProfile:
    return QualityProfile.fit(make_frame(4000, seed=0), label="label")


def error_checks(report: QualityReport) -> set[str]:
    return {f.check for f in report.errors}


def copy(frame: Frame) -> Frame:
    return {name: values.copy() for name, values in frame.items()}


# -- clean data ------------------------------------------------------------------------


def test_clean_batch_passes_without_findings(profile: QualityProfile) -> None:
    report = check_batch(profile, make_frame(1000, seed=1))
    assert report.passed, report.summary()
    assert report.findings == ()
    assert report.summary() == "batch passed: 1,000 rows, 0 errors, 0 warnings"


def test_fifty_clean_batches_from_the_reference_distribution_all_pass(
    profile: QualityProfile,
) -> None:
    failed = [
        report.summary()
        for seed in range(100, 150)
        if not (report := check_batch(profile, make_frame(500, seed))).passed
    ]
    assert failed == []


def test_clean_batches_of_many_sizes_pass(profile: QualityProfile) -> None:
    for seed, n in enumerate((1, 5, 30, 200, 3000), start=200):
        report = check_batch(profile, make_frame(n, seed))
        assert report.passed, (n, report.summary())


# -- each poisoning pattern ------------------------------------------------------------


def test_five_percent_flipped_labels_are_flagged_and_listed(profile: QualityProfile) -> None:
    batch = make_frame(1000, seed=2)
    flipped = np.random.default_rng(2).choice(1000, size=50, replace=False)
    batch["label"][flipped] = [NEXT_CLASS[c] for c in batch["label"][flipped]]
    report = check_batch(profile, batch)
    assert error_checks(report) == {"label_flip"}
    (finding,) = report.errors
    assert finding.observed is not None and finding.threshold is not None
    assert finding.observed > finding.threshold
    assert len(set(finding.rows) & set(flipped.tolist())) >= 45
    assert finding.p_value is not None and finding.p_value < 0.001


def test_flipped_labels_are_flagged_with_the_batch_as_neighbour_index(
    profile: QualityProfile,
) -> None:
    batch = make_frame(1000, seed=3)
    clean = check_batch(profile, batch, QualityOptions(label_flip_index="batch"))
    assert clean.passed, clean.summary()
    flipped = np.random.default_rng(3).choice(1000, size=50, replace=False)
    batch["label"][flipped] = [NEXT_CLASS[c] for c in batch["label"][flipped]]
    report = check_batch(profile, batch, QualityOptions(label_flip_index="batch"))
    assert error_checks(report) == {"label_flip"}
    assert "in the batch" in report.errors[0].message


def test_large_batches_are_judged_on_a_seeded_subsample(profile: QualityProfile) -> None:
    batch = make_frame(2000, seed=26)
    flipped = np.random.default_rng(26).choice(2000, size=200, replace=False)
    batch["label"][flipped] = [NEXT_CLASS[c] for c in batch["label"][flipped]]
    options = QualityOptions(label_flip_max_rows=400)
    first, again = check_batch(profile, batch, options), check_batch(profile, batch, options)
    assert error_checks(first) == {"label_flip"} and first == again
    assert " of 400 labelled rows judged" in first.errors[0].message
    listed = first.errors[0].rows
    assert len(set(listed) & set(flipped.tolist())) >= 0.9 * len(listed)


def test_flipped_labels_in_overlapping_classes_are_flagged_above_the_base_rate() -> None:
    points, y = make_classification(
        n_samples=5000, n_features=5, n_informative=4, n_redundant=0, class_sep=1.5,
        flip_y=0.0, random_state=0,
    )  # fmt: skip
    frames = [
        {**{f"f{i}": points[rows, i] for i in range(5)}, "y": y[rows].astype(np.float64)}
        for rows in (slice(0, 4000), slice(4000, 5000))
    ]
    profile = QualityProfile.fit(frames[0], label="y")
    assert profile.label is not None and profile.label.suspect_rate is not None
    assert 0 < profile.label.suspect_rate < 0.05
    assert check_batch(profile, frames[1]).passed
    flipped = np.random.default_rng(4).choice(1000, size=50, replace=False)
    frames[1]["y"][flipped] = 1 - frames[1]["y"][flipped]
    assert error_checks(check_batch(profile, frames[1])) == {"label_flip"}


def test_out_of_range_values_fail_but_one_stray_value_does_not(profile: QualityProfile) -> None:
    batch = make_frame(1000, seed=4)
    batch["x0"][:1] = 1e4
    assert profile.numeric["x0"].high is not None
    assert check_batch(profile, batch).passed
    batch["x0"][:40] = np.nan
    batch["x0"][40:70] = 1e4
    report = check_batch(profile, batch)
    assert "out_of_range" in error_checks(report)
    finding = next(f for f in report.errors if f.check == "out_of_range")
    assert finding.column == "x0" and finding.observed == pytest.approx(30 / 960)
    assert finding.rows == tuple(range(40, 70))


def test_unseen_categories_fail_when_their_share_rises(profile: QualityProfile) -> None:
    batch = make_frame(1000, seed=5)
    batch["colour"][:5] = None
    batch["colour"][5:55] = "purple"
    report = check_batch(profile, batch)
    assert error_checks(report) == {"unseen_categories"}
    assert "purple" in report.errors[0].message
    assert report.errors[0].rows == tuple(range(5, 55))


def test_a_single_new_category_warns_and_passes(profile: QualityProfile) -> None:
    batch = make_frame(1000, seed=6)
    batch["colour"][7] = "purple"
    report = check_batch(profile, batch)
    assert report.passed
    (warning,) = report.warnings
    assert (warning.check, warning.column) == ("unseen_categories", "colour")
    assert "purple" in warning.message


def test_missing_rate_spike_fails(profile: QualityProfile) -> None:
    batch = make_frame(1000, seed=7)
    batch["heavy"][::5] = np.nan
    batch["colour"][::4] = None
    report = check_batch(profile, batch)
    assert {(f.check, f.column) for f in report.errors} == {
        ("missing_rate", "heavy"),
        ("missing_rate", "colour"),
    }


def test_thirty_percent_duplicated_rows_fail(profile: QualityProfile) -> None:
    base = make_frame(700, seed=8)
    repeats = np.random.default_rng(8).choice(700, size=300)
    batch = {name: np.concatenate([v, v[repeats]]) for name, v in base.items()}
    report = check_batch(profile, batch)
    assert error_checks(report) == {"duplicate_rows"}
    assert report.errors[0].observed == pytest.approx(0.3)
    assert report.errors[0].rows[0] >= 700


def test_duplicates_natural_to_discrete_data_do_not_fail() -> None:
    rng = np.random.default_rng(9)

    def frame(n: int) -> Frame:
        return {
            "a": rng.choice(np.array(["x", "y", "z"], dtype=object), size=n),
            "b": rng.integers(0, 4, size=n).astype(np.float64),
        }

    profile = QualityProfile.fit(frame(3000))
    for n in (50, 500, 3000, 20_000):
        report = check_batch(profile, frame(n))
        assert report.passed, (n, report.summary())


def test_outlier_spike_inside_the_accepted_range_fails(profile: QualityProfile) -> None:
    batch = make_frame(1000, seed=10)
    q = profile.numeric["heavy"]
    assert q.high is not None and q.median is not None and q.scale is not None
    extreme = q.median + 6 * q.scale
    assert extreme < q.high  # an outlier by robust z, but inside the range
    batch["heavy"][:100] = extreme
    report = check_batch(profile, batch)
    assert {(f.check, f.column) for f in report.errors} == {("outlier_rate", "heavy")}


def test_label_shift_fails_and_a_small_shift_passes(profile: QualityProfile) -> None:
    pool = make_frame(4000, seed=11)
    by_class = {c: np.flatnonzero(pool["label"] == c) for c in ("c0", "c1", "c2")}

    def mix(counts: dict[str, int]) -> Frame:
        rows = np.concatenate([by_class[c][:k] for c, k in counts.items()])
        return {name: values[rows] for name, values in pool.items()}

    shifted = check_batch(profile, mix({"c0": 700, "c1": 150, "c2": 150}))
    assert error_checks(shifted) == {"label_shift"}
    finding = shifted.errors[0]
    assert finding.observed == pytest.approx(0.7 - 1 / 3, abs=0.02)
    assert finding.threshold == 0.1
    assert check_batch(profile, mix({"c0": 360, "c1": 320, "c2": 320})).passed


# -- bad input -------------------------------------------------------------------------


def test_infinities_fail(profile: QualityProfile) -> None:
    batch = make_frame(1000, seed=12)
    batch["x2"][[3, 9]] = [np.inf, -np.inf]
    report = check_batch(profile, batch)
    assert error_checks(report) == {"infinite_values"}
    assert report.errors[0].rows == (3, 9)


def test_empty_batch_fails_with_a_finding(profile: QualityProfile) -> None:
    empty = {name: values[:0] for name, values in make_frame(10, seed=13).items()}
    report = check_batch(profile, empty)
    assert not report.passed
    assert [f.check for f in report.errors] == ["empty_batch"]
    assert error_checks(check_batch(profile, {})) == {"empty_batch", "missing_column"}


def test_all_nan_column_fails_its_missing_rate(profile: QualityProfile) -> None:
    batch = make_frame(500, seed=14)
    batch["x1"] = np.full(500, np.nan)
    report = check_batch(profile, batch)
    assert {(f.check, f.column) for f in report.errors} == {("missing_rate", "x1")}
    assert report.errors[0].observed == 1.0


def test_mixed_types_are_wrong_type_errors(profile: QualityProfile) -> None:
    batch = make_frame(200, seed=15)
    mixed = batch["x0"].astype(object)
    mixed[[1, 2]] = ["3.5", "n/a"]
    batch["x0"] = mixed
    batch["colour"] = batch["colour"].copy()
    batch["colour"][4] = 7
    report = check_batch(profile, batch)
    assert {(f.check, f.column) for f in report.errors} == {
        ("wrong_type", "x0"),
        ("wrong_type", "colour"),
    }
    assert "2 of 200" in report.errors[0].message


def test_numbers_in_an_object_column_and_ints_are_accepted_as_numeric(
    profile: QualityProfile,
) -> None:
    batch = make_frame(200, seed=16)
    as_objects = batch["heavy"].astype(object)
    as_objects[0] = None
    batch["heavy"] = as_objects
    batch["x0"] = np.round(batch["x0"]).astype(np.int64)
    assert check_batch(profile, batch).passed


def test_a_float_array_for_a_categorical_column_is_a_wrong_type(profile: QualityProfile) -> None:
    batch = make_frame(200, seed=17)
    batch["colour"] = np.zeros(200)
    assert error_checks(check_batch(profile, batch)) == {"wrong_type"}


def test_schema_missing_and_extra_columns(profile: QualityProfile) -> None:
    batch = make_frame(300, seed=18)
    del batch["heavy"]
    batch["surprise"] = np.zeros(300)
    report = check_batch(profile, batch)
    assert {(f.check, f.column) for f in report.errors} == {("missing_column", "heavy")}
    assert [f.check for f in report.warnings] == ["extra_columns"]
    optional = QualityProfile.fit(make_frame(300, seed=0), required=["x0", "label"])
    assert check_batch(optional, batch).passed
    assert {f.check for f in check_batch(optional, batch).warnings} == {
        "missing_column",
        "extra_columns",
    }


def test_a_ten_row_reference_fits_and_says_what_it_cannot_check() -> None:
    profile = QualityProfile.fit(make_frame(10, seed=19), label="label")
    report = check_batch(profile, make_frame(500, seed=20))
    assert report.passed
    (warning,) = report.warnings
    assert warning.check == "insufficient_data" and warning.column is None
    assert (warning.observed, warning.threshold) == (10.0, 100.0)
    broken = make_frame(500, seed=20)
    broken["x0"][0] = np.inf
    del broken["colour"]
    assert error_checks(check_batch(profile, broken)) == {"infinite_values", "missing_column"}


def test_a_column_empty_in_the_reference_skips_its_range_checks() -> None:
    reference = make_frame(500, seed=21)
    reference["heavy"] = np.full(500, np.nan)
    profile = QualityProfile.fit(reference, label="label")
    assert profile.label is not None and profile.label.features == ("x0", "x1", "x2")
    batch = make_frame(300, seed=22)
    batch["heavy"][:] = np.nan
    report = check_batch(profile, batch)
    assert [(f.check, f.column) for f in report.findings] == [("insufficient_data", "heavy")]
    assert report.passed
    batch["heavy"][:] = 1.0
    assert check_batch(profile, batch).passed  # fewer missing values than the reference is fine


def test_malformed_frames_raise_data_error(profile: QualityProfile) -> None:
    with pytest.raises(DataError, match="same length"):
        check_batch(profile, {"x0": np.zeros(3), "x1": np.zeros(4)})
    with pytest.raises(DataError, match="1-D"):
        check_batch(profile, {"x0": np.zeros((3, 2))})
    with pytest.raises(DataError, match="mapping"):
        check_batch(profile, [np.zeros(3)])  # type: ignore[arg-type]


# -- options and report ----------------------------------------------------------------


def test_disabled_and_warn_only_checks(profile: QualityProfile) -> None:
    batch = make_frame(500, seed=23)
    batch["x2"][0] = np.inf
    assert check_batch(profile, batch, QualityOptions(disabled=frozenset({"infinite_values"})))
    report = check_batch(profile, batch, QualityOptions(warn_only=frozenset({"infinite_values"})))
    assert report.passed and [f.check for f in report.warnings] == ["infinite_values"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alpha": 0.0},
        {"missing_tolerance": 1.5},
        {"disabled": frozenset({"nope"})},
        {"label_flip_index": "both"},
        {"min_reference_rows": 0},
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        QualityOptions(**kwargs)  # type: ignore[arg-type]


def test_report_json_is_strict_json_and_names_known_checks(profile: QualityProfile) -> None:
    batch = make_frame(500, seed=24)
    batch["x0"][:40] = -1e6
    batch["colour"][0] = "purple"
    report = check_batch(profile, batch)
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert data["passed"] is False and data["n_rows"] == 500
    assert data["errors"] == len(report.errors) and data["summary"] == report.summary()
    assert {f["check"] for f in data["findings"]} <= set(CHECKS)
    assert report.summary().startswith("batch FAILED: 500 rows, ")
    assert "out_of_range[x0]" in report.summary()
    assert report.reasons[0].startswith("out_of_range[x0]: ")


# -- the statistics underneath, against scipy ------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 5000),
    share=st.floats(0, 1),
    base=st.floats(0, 0.5),
    tolerance=st.floats(0.001, 0.1),
    alpha=st.sampled_from([0.05, 0.001, 1e-6]),
)
def test_rate_spike_is_a_one_sided_binomial_test(
    n: int, share: float, base: float, tolerance: float, alpha: float
) -> None:
    count = round(share * n)
    test = qs.rate_spike(count, n, base, tolerance, alpha)
    p0 = min(1.0, base + tolerance)
    expected = stats.binomtest(count, n, p0, alternative="greater").pvalue
    assert test.p_value == pytest.approx(expected, rel=1e-6, abs=1e-300)
    assert test.fired == (expected <= alpha) or abs(expected - alpha) < 1e-9 * alpha
    assert test.observed == count / n


def test_robust_scale_matches_scipy_and_falls_back_when_mad_is_zero() -> None:
    values = np.sort(np.random.default_rng(25).normal(3, 2, 1001))
    scale, method = qs.robust_scale(values, float(np.median(values)))
    assert method == "mad"
    assert scale == pytest.approx(stats.median_abs_deviation(values, scale="normal"), rel=1e-4)
    mostly_zero = np.sort(np.r_[np.zeros(90), np.arange(1.0, 11.0)])
    assert qs.robust_scale(mostly_zero, 0.0) == (pytest.approx(1.2533 * 0.55), "meanad")
    assert qs.robust_scale(np.zeros(5), 0.0) == (0.0, "constant")
    assert qs.outlier_mask(np.array([0.0, 1e-9]), 0.0, 0.0, 3.5).tolist() == [False, True]


def test_label_shift_is_the_two_sample_contingency_test() -> None:
    shift = label_shift({"a": 50, "b": 50}, {"a": 30, "b": 60, "c": 10})
    assert shift is not None
    table = np.array([[50, 50, 0], [30, 60, 10]])
    expected = stats.chi2_contingency(table, correction=False)
    assert shift.statistic == pytest.approx(expected.statistic)
    assert shift.p_value == pytest.approx(expected.pvalue)
    assert shift.total_variation == pytest.approx(0.5 * (0.2 + 0.1 + 0.1))
    assert label_shift({"a": 5}, {"a": 9}) is None


def test_duplicate_curve_interpolates_in_log_size() -> None:
    distinct = qs.duplicate_curve(np.arange(1000), np.random.default_rng(0))
    assert all(share == 0 for _, share in distinct)
    assert qs.duplicate_share_at(distinct, 10**6) == 0
    three = qs.duplicate_curve(np.arange(3000) % 3, np.random.default_rng(0))
    assert three[-1] == (3000, pytest.approx(2997 / 3000))
    assert qs.duplicate_share_at(three, 3) <= qs.duplicate_share_at(three, 300)
    assert qs.duplicate_share_at(three, 10**6) <= 1.0
