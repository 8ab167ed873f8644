"""Ensemble combination checked against direct numpy computations."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlgate.errors import PolicyError
from mlgate.serving.combine import (
    combine_majority,
    combine_mean,
    combine_weighted_mean,
    confidence,
)

probabilities = st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 4)).flatmap(
    lambda shape: st.lists(
        hnp.arrays(np.float32, shape[1:], elements=st.floats(0, 1, width=32)),
        min_size=shape[0],
        max_size=shape[0],
    )
)


@given(probabilities)
def test_mean_is_the_numpy_mean_and_label_its_argmax(arrays: list[np.ndarray]) -> None:
    combined = combine_mean([{"probabilities": a} for a in arrays])
    expected = np.mean(np.stack(arrays).astype(np.float64), axis=0)
    np.testing.assert_allclose(combined["probabilities"], expected, rtol=1e-12)
    assert combined["label"].dtype == np.int64
    np.testing.assert_array_equal(combined["label"], np.argmax(combined["probabilities"], axis=1))


@given(probabilities, st.data())
def test_weighted_mean_is_numpy_average(arrays: list[np.ndarray], data: st.DataObject) -> None:
    weights = data.draw(
        st.lists(st.floats(0, 10), min_size=len(arrays), max_size=len(arrays)).filter(
            lambda w: sum(w) > 1e-3
        )
    )
    combined = combine_weighted_mean([{"probabilities": a} for a in arrays], weights)
    expected = np.average(np.stack(arrays).astype(np.float64), axis=0, weights=weights)
    np.testing.assert_allclose(combined["probabilities"], expected, rtol=1e-9, atol=1e-12)


def test_known_classes_name_the_label_and_regressions_get_none() -> None:
    outputs = [{"probabilities": np.array([[0.2, 0.8], [0.9, 0.1]])}] * 2
    combined = combine_mean(outputs, classes=["ham", "spam"])
    assert combined["label"].tolist() == ["spam", "ham"]
    with pytest.raises(PolicyError, match="2 columns but 3 class labels"):
        combine_mean(outputs, classes=["a", "b", "c"])
    regression = combine_mean(
        [{"predictions": np.array([1.0, 2.0])}, {"predictions": np.array([3.0, 5.0])}],
        key="predictions",
        label_key=None,
    )
    assert regression.keys() == {"predictions"}
    np.testing.assert_array_equal(regression["predictions"], [2.0, 3.5])


labels = st.tuples(st.integers(1, 6), st.integers(1, 8)).flatmap(
    lambda shape: st.lists(
        hnp.arrays(np.int64, (shape[1],), elements=st.integers(0, 3)),
        min_size=shape[0],
        max_size=shape[0],
    )
)


@given(labels)
def test_majority_matches_a_per_row_count_with_earliest_tie_break(arrays: list[np.ndarray]) -> None:
    voted = combine_majority([{"label": a} for a in arrays])["label"]
    for row in range(arrays[0].shape[0]):
        answers = [int(a[row]) for a in arrays]
        counts = Counter(answers)
        top = max(counts.values())
        expected = next(answer for answer in answers if counts[answer] == top)
        assert voted[row] == expected


def test_majority_ties_go_to_the_earliest_target() -> None:
    outputs = [
        {"label": np.array(["b", "a", "x"])},
        {"label": np.array(["a", "b", "y"])},
        {"label": np.array(["a", "b", "z"])},
        {"label": np.array(["b", "a", "z"])},
    ]
    assert combine_majority(outputs)["label"].tolist() == ["b", "a", "z"]


def test_confidence_is_the_row_maximum() -> None:
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]])
    np.testing.assert_array_equal(confidence({"probabilities": probs}), np.max(probs, axis=1))
    binary = confidence({"p": np.array([0.9, 0.2, 0.5])}, key="p")
    np.testing.assert_allclose(binary, [0.9, 0.8, 0.5])


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ([], "at least one target"),
        (
            [{"probabilities": np.ones((2, 3))}, {"label": np.ones(2)}],
            "every target to output 'probabilities'; version 2 gave only ['label']",
        ),
        (
            [{"probabilities": np.ones((2, 3))}, {"probabilities": np.ones((2, 4))}],
            "same shape; version 1 gave (2, 3), version 2 gave (2, 4)",
        ),
        (
            [{"probabilities": np.array(["a"])}, {"probabilities": np.array(["b"])}],
            "can only average numbers",
        ),
    ],
)
def test_unworkable_ensembles_name_the_target(
    outputs: list[dict[str, np.ndarray]], message: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        combine_mean(outputs, targets=[1, 2])
    assert message in str(caught.value)


def test_other_refusals() -> None:
    same = [{"probabilities": np.ones((2, 2))}] * 2
    with pytest.raises(PolicyError, match="one weight per target"):
        combine_weighted_mean(same, [1.0])
    with pytest.raises(PolicyError, match="one above 0"):
        combine_weighted_mean(same, [0.0, 0.0])
    with pytest.raises(PolicyError, match="one kind; target 'champion' gave int64"):
        combine_majority(
            [{"label": np.array([1])}, {"label": np.array(["1"])}], targets=["champion", 2]
        )
    with pytest.raises(PolicyError, match="must output 'probabilities'"):
        confidence({"label": np.ones(2)})
    with pytest.raises(PolicyError, match="rows or rows x classes"):
        confidence({"probabilities": np.ones((2, 2, 2))})
