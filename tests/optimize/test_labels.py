"""check_labels: labels that cannot score the parent are refused before anything is built."""

from __future__ import annotations

import numpy as np
import pytest

from mlgate.errors import OptimizeError
from mlgate.optimize.labels import check_labels


def test_regression_labels_become_float64_and_a_column_is_flattened() -> None:
    got = check_labels(np.arange(4).reshape(4, 1), 4, classes=None)
    assert got.dtype == np.float64 and got.shape == (4,)
    objects = np.array([1, 2.5, 3], dtype=object)
    np.testing.assert_array_equal(check_labels(objects, 3, classes=None), [1.0, 2.5, 3.0])


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array(["1.5", "2"]), "regressor needs numeric targets"),
        (np.array([1.0, np.nan]), "1 label.s. are NaN or infinite, the first at row 1"),
        (np.zeros((2, 2)), r"shape \[2, 2\]; expected one per holdout row, \[2\]"),
        (np.zeros(3), r"shape \[3\]; expected one per holdout row, \[2\]"),
    ],
)
def test_bad_regression_labels_are_refused(labels: np.ndarray, message: str) -> None:
    with pytest.raises(OptimizeError, match=message):
        check_labels(labels, 2, classes=None)


def test_classifier_labels_keep_their_dtype_and_may_hold_a_few_unknown_classes() -> None:
    labels = np.array([0, 1, 1, 2])  # 2: a class the model never saw, a minority
    got = check_labels(labels, 4, classes=[0, 1])
    assert got.dtype == labels.dtype
    floats = check_labels(np.array([0.0, 1.0]), 2, classes=np.array([0, 1]))
    np.testing.assert_array_equal(floats, [0.0, 1.0])  # 0.0 == 0: comparable


@pytest.mark.parametrize(
    ("labels", "classes", "message"),
    [
        (np.array(["a", "b"]), [0, 1], r"labels are text \(<U1\) but the model's classes"),
        (np.array([0, 1]), ["no", "yes"], r"labels are numbers but .* text"),
        (np.array([5, 6, 0]), [0, 1], r"only 33% of the labels"),
    ],
)
def test_labels_that_cannot_score_the_classes_are_refused(
    labels: np.ndarray, classes: list[object], message: str
) -> None:
    with pytest.raises(OptimizeError, match=message):
        check_labels(labels, len(labels), classes=classes)
