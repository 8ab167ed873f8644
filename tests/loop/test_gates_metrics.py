"""Gate metrics against scikit-learn: point values, vectorised resamples, undefined cases."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from mlgate.errors import GateError
from mlgate.loop.gates import METRICS, Predictions
from mlgate.loop.gates._metrics import MetricUndefinedError, label_universe, prepare


def _proba(rng: np.random.Generator, n: int, k: int, decimals: int = 2) -> NDArray[np.float64]:
    raw = np.round(rng.dirichlet(np.ones(k), n), decimals) + 0.01  # rounding makes ties
    return np.asarray(raw / raw.sum(axis=1, keepdims=True))


def _reference(name: str, y: NDArray[Any], pred: Predictions, universe: NDArray[Any]) -> float:
    """scikit-learn called the plain way, on the raw labels."""
    p = pred.labels
    proba = pred.probabilities
    if name == "accuracy":
        return float(skm.accuracy_score(y, p))
    if name == "balanced_accuracy":
        with warnings.catch_warnings():  # "y_pred contains classes not in y_true" is fine
            warnings.simplefilter("ignore", UserWarning)
            return float(skm.balanced_accuracy_score(y, p))
    if name == "f1":
        if len(universe) <= 2:
            return float(skm.f1_score(y, p, pos_label=universe[-1], zero_division=0.0))
        return float(skm.f1_score(y, p, labels=universe, average="macro", zero_division=0.0))
    assert proba is not None and pred.classes is not None
    if name == "roc_auc":
        if proba.shape[1] == 2:
            return float(skm.roc_auc_score(y == pred.classes[1], proba[:, 1]))
        return float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=pred.classes))
    if name == "log_loss":
        return float(skm.log_loss(y, proba, labels=pred.classes))
    if name == "brier":
        return float(skm.brier_score_loss(y == pred.classes[1], proba[:, 1]))
    raise AssertionError(name)


def _classification(seed: int, n: int, k: int) -> tuple[NDArray[Any], Predictions]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    y[:k] = np.arange(k)  # every class present
    proba = _proba(rng, n, k)
    labels = np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n))
    return y, Predictions(labels, proba, np.arange(k))


def test_metrics_table_names_direction_and_task() -> None:
    assert set(METRICS) == {
        "accuracy",
        "balanced_accuracy",
        "f1",
        "roc_auc",
        "log_loss",
        "brier",
        "rmse",
        "mae",
        "r2",
    }
    lower = {name for name, m in METRICS.items() if not m.higher_is_better}
    assert lower == {"log_loss", "brier", "rmse", "mae"}
    assert {m.task for m in METRICS.values()} == {"classification", "regression"}
    score, higher, task = METRICS["accuracy"]  # a plain 3-tuple, as the loop unpacks it
    assert higher and task == "classification"
    assert score(np.array([0, 1, 1]), Predictions(np.array([0, 1, 0]))) == pytest.approx(2 / 3)


@pytest.mark.parametrize("name", ["accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss"])
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_sklearn_and_resamples_match_pointwise(
    name: str, k: int, seed: int
) -> None:
    y, pred = _classification(seed, 120, k)
    universe = label_universe(y, pred)
    scored = prepare(name, "classification", y, pred, universe)
    assert scored.value == pytest.approx(_reference(name, y, pred, universe), abs=1e-12)
    idx = np.random.default_rng(seed + 10).integers(0, len(y), size=(40, len(y)))
    vectorised = scored.resample(idx)
    for row, got in zip(idx, vectorised, strict=True):
        sub = prepare(name, "classification", y[row], pred.take(row), universe)
        assert got == pytest.approx(sub.value, abs=1e-12)


def test_brier_matches_sklearn_and_its_resamples() -> None:
    y, pred = _classification(5, 200, 2)
    scored = prepare("brier", "classification", y, pred, None)
    assert scored.value == pytest.approx(_reference("brier", y, pred, np.arange(2)), abs=1e-12)
    idx = np.random.default_rng(1).integers(0, 200, size=(20, 200))
    ref = [skm.brier_score_loss(y[r] == 1, pred.probabilities[r, 1]) for r in idx]  # type: ignore[index]
    np.testing.assert_allclose(scored.resample(idx), ref, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 40),
    st.integers(0, 2**31),
    st.sampled_from(["rmse", "mae", "r2"]),
    st.booleans(),
)
def test_regression_resamples_match_sklearn(n: int, seed: int, name: str, constant: bool) -> None:
    rng = np.random.default_rng(seed)
    y = np.full(n, 3.0) if constant else rng.normal(size=n)
    pred = Predictions(np.round(y + rng.normal(scale=0.5, size=n), 1))
    scored = prepare(name, "regression", y, pred, None)
    ref = {"rmse": skm.root_mean_squared_error, "mae": skm.mean_absolute_error, "r2": skm.r2_score}
    assert scored.value == pytest.approx(float(ref[name](y, pred.labels)), abs=1e-9)
    idx = rng.integers(0, n, size=(15, n))
    expected = [float(ref[name](y[r], pred.labels[r])) for r in idx]
    np.testing.assert_allclose(scored.resample(idx), expected, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(3, 60), st.integers(2, 4))
def test_label_resamples_match_sklearn_on_any_resample(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    pred = Predictions(rng.integers(0, k, n))
    universe = label_universe(y, pred)
    idx = rng.integers(0, n, size=(5, n))
    for name in ("accuracy", "balanced_accuracy", "f1"):
        scored = prepare(name, "classification", y, pred, universe)
        for row, got in zip(idx, scored.resample(idx), strict=True):
            want = prepare(name, "classification", y[row], pred.take(row), universe).value
            assert got == pytest.approx(want, abs=1e-12)


def test_binary_positive_class_is_the_larger_label_for_text_labels() -> None:
    y = np.array(["no", "yes", "yes", "no", "yes"])
    pred = Predictions(np.array(["no", "yes", "no", "no", "yes"]))
    assert METRICS["f1"].score(y, pred) == pytest.approx(
        skm.f1_score(y, pred.labels, pos_label="yes")
    )


def test_probability_columns_follow_classes_not_their_given_order() -> None:
    y = np.array([0, 1, 1, 0])
    in_order = Predictions(y, np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]]))
    swapped = Predictions(y, in_order.probabilities[:, ::-1], np.array([1, 0]))  # type: ignore[index]
    for name in ("roc_auc", "log_loss", "brier"):
        assert METRICS[name].score(y, swapped) == pytest.approx(METRICS[name].score(y, in_order))


def test_float32_probabilities_are_rescaled_not_refused() -> None:
    y = np.array([0, 1, 1, 0, 2])
    proba = np.array(_proba(np.random.default_rng(3), 5, 3), dtype=np.float32)
    pred = Predictions(y, proba, np.arange(3))
    assert METRICS["log_loss"].score(y, pred) == pytest.approx(
        skm.log_loss(y, proba.astype(np.float64) / proba.sum(axis=1, keepdims=True)), rel=1e-6
    )


@pytest.mark.parametrize(
    ("name", "y", "pred", "says"),
    [
        ("roc_auc", [0, 1, 1], Predictions(np.array([0, 1, 0])), "needs class probabilities"),
        ("log_loss", [0, 1], Predictions(np.array([0, 1])), "needs class probabilities"),
        ("roc_auc", [1, 1, 1], Predictions(np.array([1, 1, 0]), np.full((3, 2), 0.5)), "classes"),
        ("brier", [0, 1, 2], Predictions(np.array([0, 1, 2]), np.full((3, 3), 1 / 3)), "binary"),
        ("accuracy", [0, 1], Predictions(np.array([0.0, np.nan])), "NaN"),
        ("rmse", [0.5, 1.0], Predictions(np.array([np.nan, 1.0])), "NaN"),
        ("roc_auc", [0, 1], Predictions(np.array([0, 1]), np.array([[0.5, np.nan]] * 2)), "NaN"),
        ("log_loss", [0, 1], Predictions(np.array([0, 1]), np.array([[0.5, 0.6]] * 2)), "sum to"),
        (
            "log_loss",
            [0, 2],
            Predictions(np.array([0, 1]), np.full((2, 2), 0.5), [0, 1]),
            "no prob",
        ),
        ("log_loss", [0, 2], Predictions(np.array([0, 1]), np.full((2, 2), 0.5)), "classes_"),
        ("r2", [1.0], Predictions(np.array([1.0])), "two holdout rows"),
        ("rmse", [1.0, 2.0], Predictions(np.array([np.inf, 1.0])), "infinite"),
    ],
)
def test_undefined_metrics_raise_with_the_reason(
    name: str, y: list[Any], pred: Predictions, says: str
) -> None:
    with pytest.raises(MetricUndefinedError, match=says):
        METRICS[name].score(np.array(y), pred)


def test_metric_of_the_other_task_is_refused() -> None:
    with pytest.raises(GateError, match="regression metric but this loop's task is classification"):
        prepare("rmse", "classification", np.array([0, 1]), Predictions(np.array([0, 1])), None)


def test_label_universe_refuses_numbers_mixed_with_text() -> None:
    with pytest.raises(GateError, match="mix numbers and text"):
        label_universe(np.array([0, 1]), Predictions(np.array(["0", "1"])))


def test_label_universe_ignores_missing_predictions() -> None:
    universe = label_universe(np.array([0, 1]), Predictions(np.array([1.0, np.nan])))
    assert universe.tolist() == [0.0, 1.0]
