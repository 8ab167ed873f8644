"""compare_outputs against numpy/sklearn oracles; tolerances decide with reasons."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error

from mlgate.errors import OptimizeError
from mlgate.optimize import Comparison, Tolerance, Tolerances, compare_outputs


def _classifier(labels: list[int], p1: list[float]) -> dict[str, np.ndarray]:
    p = np.asarray(p1)
    return {"label": np.asarray(labels), "probabilities": np.column_stack([1 - p, p])}


def test_classifier_agreement_probability_gap_and_accuracy_delta() -> None:
    parent = _classifier([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3])
    variant = _classifier([0, 1, 0, 0], [0.1, 0.85, 0.45, 0.3])
    truth = np.array([0, 1, 1, 1])
    c = compare_outputs(parent, variant, truth)
    assert c.label_agreement == 0.75
    assert c.max_probability_diff == pytest.approx(0.35)
    assert c.parent_metrics == {"accuracy": 0.75} and c.variant_metrics == {"accuracy": 0.5}
    assert c.accuracy_delta == pytest.approx(-0.25)
    reasons = c.check(Tolerances().reduced)
    assert any("agree on 75.00%" in r for r in reasons)
    assert any("accuracy drops by 0.2500" in r for r in reasons)
    assert any("probabilities differ" in r for r in c.check(Tolerances().exact))


def test_regressor_scaled_gap_and_metric_deltas_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=50) * 100
    parent = truth + rng.normal(size=50)
    variant = parent + rng.normal(size=50) * 0.01
    c = compare_outputs({"prediction": parent}, {"prediction": variant}, truth)
    scale = np.maximum(np.maximum(np.abs(parent), np.median(np.abs(parent))), 1.0)
    assert c.max_scaled_prediction_diff == pytest.approx((np.abs(parent - variant) / scale).max())
    assert c.parent_metrics["rmse"] == pytest.approx(np.sqrt(mean_squared_error(truth, parent)))
    assert c.variant_metrics["mae"] == pytest.approx(mean_absolute_error(truth, variant))
    assert c.accuracy_delta is None and set(c.deltas) == {"rmse", "mae"}


def test_rmse_increase_beyond_tolerance_is_a_reason() -> None:
    c = Comparison(rows=3, parent_metrics={"rmse": 1.0}, variant_metrics={"rmse": 1.5})
    assert c.check(Tolerance(max_rmse_increase=0.1)) == (
        "RMSE rises by 50.00%, more than the allowed 10.00%",
    )
    assert c.check(Tolerance(max_rmse_increase=None)) == ()


def test_identical_outputs_pass_every_default() -> None:
    parent = _classifier([0, 1], [0.2, 0.7])
    c = compare_outputs(parent, parent, np.array([0, 1]))
    assert c.check(Tolerances().exact) == () and c.accuracy_delta == 0.0


def test_labels_of_the_wrong_length_are_refused() -> None:
    parent = _classifier([0, 1], [0.2, 0.7])
    with pytest.raises(OptimizeError, match=r"labels of shape \[3\] for 2 holdout rows"):
        compare_outputs(parent, parent, np.array([0, 1, 1]))
    with pytest.raises(OptimizeError, match="dtype <U3, the model answers int64"):
        compare_outputs(parent, parent, np.array(["yes", "no"]))


def test_metrics_are_finite_and_flat() -> None:
    c = compare_outputs(_classifier([0, 1], [0.2, 0.7]), _classifier([0, 1], [0.25, 0.7]))
    assert c.metrics() == {"label_agreement": 1.0, "max_probability_diff": pytest.approx(0.05)}


# -- non-finite values: NaN > bound is False, so they must fail explicitly ----------------


def test_nan_probabilities_in_the_variant_are_a_defect() -> None:
    parent = _classifier([0, 1, 1], [0.1, 0.9, 0.8])
    variant = _classifier([0, 1, 1], [0.1, np.nan, 0.8])
    c = compare_outputs(parent, variant)
    reasons = c.check(Tolerance(max_probability_diff=0.5))
    assert reasons and "2 NaN or infinite value(s) where the parent's are finite" in reasons[0]
    assert "the first at row 1" in reasons[0]


def test_finite_where_the_parent_is_nan_is_an_unbounded_difference() -> None:
    parent = _classifier([0, 1], [0.1, np.nan])
    variant = _classifier([0, 1], [0.1, 0.9])
    c = compare_outputs(parent, variant)
    assert c.max_probability_diff == np.inf
    assert c.check(Tolerance(max_probability_diff=1.0))[0].startswith("probabilities differ")


def test_infinite_prediction_is_a_defect_and_never_within_bound() -> None:
    parent = {"prediction": np.array([1.0, 2.0, 3.0])}
    variant = {"prediction": np.array([1.0, np.inf, 3.0])}
    reasons = compare_outputs(parent, variant).check(Tolerance(max_scaled_prediction_diff=1e9))
    assert len(reasons) == 1 and "'prediction' holds 1 NaN or infinite" in reasons[0]


def test_non_finite_where_the_parent_is_non_finite_too_is_agreement() -> None:
    parent = {"prediction": np.array([1.0, np.nan, np.inf])}
    c = compare_outputs(parent, {"prediction": parent["prediction"].copy()})
    assert c.max_scaled_prediction_diff == 0.0 and c.check(Tolerances().exact) == ()


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_non_finite_statistic_breaks_every_bound(value: float) -> None:
    c = Comparison(
        rows=3,
        label_agreement=value,
        max_probability_diff=value,
        max_scaled_prediction_diff=value,
        parent_metrics={"accuracy": 0.9, "rmse": 1.0},
        variant_metrics={"accuracy": value, "rmse": value},
    )
    reasons = c.check(Tolerance())
    expected = ("probabilities", "predictions", "accuracy", "RMSE")
    if np.isnan(value):
        expected = (*expected, "labels agree")
    for word in expected:
        assert any(word in r for r in reasons), (word, reasons)
    assert c.metrics() == {}  # nothing non-finite reaches a version's metrics


# -- shapes and kinds: a mismatch rejects, it does not broadcast --------------------------


def test_label_shape_mismatch_is_a_defect_not_a_broadcast() -> None:
    parent = {"label": np.array([0, 1, 1])}
    variant = {"label": np.array([[0], [1], [1]])}
    c = compare_outputs(parent, variant)
    assert c.check(Tolerance()) == ("output 'label' has shape [3, 1], the parent's [3]",)


def test_probability_width_mismatch_is_a_defect() -> None:
    parent = _classifier([0, 1], [0.2, 0.7])
    variant = {"label": parent["label"], "probabilities": parent["probabilities"][:, :1]}
    reasons = compare_outputs(parent, variant).check(Tolerance())
    assert reasons == ("output 'probabilities' has shape [2, 1], the parent's [2, 2]",)


def test_label_kind_mismatch_and_missing_output_are_defects() -> None:
    parent = _classifier([0, 1], [0.2, 0.7])
    text = {"label": np.array(["0", "1"]), "probabilities": parent["probabilities"]}
    assert "output 'label' is of dtype <U1" in compare_outputs(parent, text).check(Tolerance())[0]
    reasons = compare_outputs(parent, {"label": parent["label"]}).check(Tolerance())
    assert reasons == ("the variant has no output 'probabilities'",)


def test_regression_prediction_shape_mismatch_is_a_defect() -> None:
    parent = {"prediction": np.arange(4.0)}
    variant = {"prediction": np.arange(8.0).reshape(4, 2)}
    assert (
        "shape [4, 2], the parent's [4]" in compare_outputs(parent, variant).check(Tolerance())[0]
    )


# -- scale and floors ---------------------------------------------------------------------


def test_one_outlier_does_not_loosen_the_bound_for_other_rows() -> None:
    parent = np.array([1e6, *np.linspace(1.0, 10.0, 99)])
    variant = parent.copy()
    variant[1] += 1.0  # 1.0 off on a row whose typical neighbour is about 5
    c = compare_outputs({"prediction": parent}, {"prediction": variant})
    median = np.median(np.abs(parent))
    assert c.max_scaled_prediction_diff == pytest.approx(1.0 / median)
    assert any("predictions differ" in r for r in c.check(Tolerance()))


def test_large_predictions_are_judged_relative_to_themselves() -> None:
    parent = np.array([1e6, 2.0, 3.0])
    variant = parent + np.array([10.0, 0.0, 0.0])  # 1e-5 of that row's size
    c = compare_outputs({"prediction": parent}, {"prediction": variant})
    assert c.max_scaled_prediction_diff == pytest.approx(1e-5)


def test_rmse_increase_from_a_perfect_fit_uses_the_floor() -> None:
    truth = np.linspace(-500.0, 500.0, 101)
    rounded = truth + 1e-5  # float32 rounding of a perfect fit
    c = compare_outputs({"prediction": truth}, {"prediction": rounded}, truth)
    assert c.parent_metrics["rmse"] == 0.0
    assert c.check(Tolerance()) == ()  # not "RMSE rises by 100000000%"
    worse = compare_outputs({"prediction": truth}, {"prediction": truth + 5.0}, truth)
    assert any("RMSE rises" in r for r in worse.check(Tolerance(max_scaled_prediction_diff=None)))
