"""The sample-ratio-mismatch check against scipy's chi-square test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats import srm_check


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 100_000), min_size=2, max_size=5), st.data())
def test_srm_is_scipys_chisquare(counts: list[int], data: st.DataObject) -> None:
    raw = data.draw(st.lists(st.integers(1, 100), min_size=len(counts), max_size=len(counts)))
    weights = {f"v{i}": w / sum(raw) for i, w in enumerate(raw)}
    observed = {f"v{i}": c for i, c in enumerate(counts)}
    check = srm_check(observed, weights)
    if sum(counts) == 0:
        assert check.p_value == 1.0 and check.passed
        return
    ref = sps.chisquare(counts, [sum(counts) * w for w in weights.values()])
    assert check.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert check.passed == (ref.pvalue >= 0.001)


def test_a_visible_mismatch_fails_with_the_shares_in_the_reason() -> None:
    check = srm_check({"control": 50_600, "treatment": 49_400}, {"control": 0.5, "treatment": 0.5})
    assert not check.passed and check.p_value < 0.001
    assert check.reason is not None and "0.5060" in check.reason
    assert srm_check({"c": 5030, "t": 4970}, {"c": 0.5, "t": 0.5}).passed


def test_zero_weight_arms() -> None:
    weights = {"c": 0.5, "t": 0.5, "off": 0.0}
    fine = srm_check({"c": 1000, "t": 1010, "off": 0}, weights)
    assert fine.passed and fine.tested == ("c", "t")
    stray = srm_check({"c": 1000, "t": 1010, "off": 3}, weights)
    assert not stray.passed and stray.p_value == 0.0
    assert stray.reason is not None and "weight 0" in stray.reason


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"c": 0.5, "t": 0.6}, "sum to"),
        ({"c": 0.5}, "one weight per variant"),
        ({"c": 1.5, "t": -0.5}, r"\[0, 1\]"),
        ({"c": 0.5, "t": True}, "must be a number"),
    ],
)
def test_bad_weights(weights: dict[str, object], message: str) -> None:
    with pytest.raises(ExperimentInputError, match=message):
        srm_check({"c": 10, "t": 10}, weights)  # type: ignore[arg-type]


def test_weights_within_rounding_of_one_are_accepted() -> None:
    assert srm_check(
        {"a": 10, "b": 10, "c": 10}, {"a": 0.333333, "b": 0.333333, "c": 0.333334}
    ).passed
