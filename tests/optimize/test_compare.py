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
    scale = max(1.0, np.abs(parent).max())
    assert c.max_scaled_prediction_diff == pytest.approx(np.abs(parent - variant).max() / scale)
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
    with pytest.raises(OptimizeError, match="3 labels for 2 holdout rows"):
        compare_outputs(parent, parent, np.array([0, 1, 1]))


def test_metrics_are_finite_and_flat() -> None:
    c = compare_outputs(_classifier([0, 1], [0.2, 0.7]), _classifier([0, 1], [0.25, 0.7]))
    assert c.metrics() == {"label_agreement": 1.0, "max_probability_diff": pytest.approx(0.05)}
