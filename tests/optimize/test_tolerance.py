"""Tolerance bounds: defaults per kind, user bounds that never loosen the exact kind, ranges."""

from __future__ import annotations

import numpy as np
import pytest

from mlgate.errors import OptimizeError
from mlgate.optimize import EXACT, Comparison, Tolerance, Tolerances


def test_default_bounds_for_reduced_and_exact_kinds() -> None:
    t = Tolerances()
    assert t.for_kind("onnx-int8-dynamic").max_probability_diff == 0.05
    assert t.for_kind("onnx") == EXACT and EXACT.min_label_agreement == 0.999
    assert t.for_kind("onnx").max_rmse_increase is None  # exact relies on the prediction bound
    int8 = Comparison(rows=10, label_agreement=1.0, max_probability_diff=1.0)
    assert int8.check(t.reduced) == ("probabilities differ by up to 1, above the tolerance 0.05",)


def test_with_bounds_sets_reduced_and_tightens_exact_only_when_stricter() -> None:
    t = Tolerances.with_bounds(
        max_probability_diff=0.2,
        min_label_agreement=0.9999,
        max_accuracy_drop=0.001,
        max_rmse_increase=0.05,
    )
    assert t.reduced == Tolerance(
        max_probability_diff=0.2,
        min_label_agreement=0.9999,
        max_accuracy_drop=0.001,
        max_rmse_increase=0.05,
    )
    assert t.exact.max_probability_diff == 1e-4  # looser than exact's own: ignored
    assert t.exact.min_label_agreement == 0.9999  # stricter: applies
    assert t.exact.max_accuracy_drop == 0.001
    assert t.exact.max_rmse_increase is None
    assert Tolerances.with_bounds() == Tolerances()


@pytest.mark.parametrize(
    "bounds",
    [{"max_probability_diff": -0.1}, {"min_label_agreement": 1.5}, {"max_rmse_increase": np.nan}],
)
def test_bounds_out_of_range_are_refused(bounds: dict[str, float]) -> None:
    with pytest.raises(OptimizeError, match="tolerance"):
        Tolerance(**bounds)
